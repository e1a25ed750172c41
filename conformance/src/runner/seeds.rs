//! Which seeds a run executes: a range, one seed (a rerun), or one shard
//! of a range.

/// Which seeds to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// `count` consecutive seeds from `start`.
    Range {
        /// The first seed.
        start: u64,
        /// How many.
        count: u64,
    },
    /// Exactly this seed.
    One(u64),
    /// One of `of` contiguous, disjoint slices of `count` seeds from
    /// `start`: the `index`-th (1-based). The slices' union is the whole
    /// range, and merging their reports (`merge::merge_json`) gives the
    /// report of the whole range.
    Shard {
        /// The whole range's first seed.
        start: u64,
        /// The whole range's size.
        count: u64,
        /// Which slice, from 1.
        index: u64,
        /// How many slices.
        of: u64,
    },
}

impl Seeds {
    /// The first seed this run executes and how many.
    pub fn bounds(self) -> (u64, u64) {
        match self {
            Seeds::Range { start, count } => (start, count),
            Seeds::One(seed) => (seed, 1),
            Seeds::Shard {
                start,
                count,
                index,
                of,
            } => {
                let cut = |k: u64| (u128::from(count) * u128::from(k) / u128::from(of)) as u64;
                let (lo, hi) = (cut(index - 1), cut(index));
                (start + lo, hi - lo)
            }
        }
    }

    /// The whole range this run is part of: its first seed and size (for a
    /// shard, the range all the shards together cover).
    pub fn whole(self) -> (u64, u64) {
        match self {
            Seeds::Shard { start, count, .. } => (start, count),
            other => other.bounds(),
        }
    }

    /// The `index`-th (1-based) of `of` contiguous slices of `count` seeds
    /// from `start`, as `--shard index/of` gives it.
    ///
    /// # Errors
    /// If `index` is not within `1..=of`, if there are fewer seeds than
    /// shards (a shard would be empty), or if the range runs past the
    /// largest seed.
    pub fn shard(start: u64, count: u64, index: u64, of: u64) -> Result<Seeds, String> {
        Seeds::range(start, count)?;
        if of == 0 || index == 0 || index > of {
            return Err(format!(
                "shard {index}/{of} does not exist: expected K/N with 1 <= K <= N"
            ));
        }
        if count < of {
            return Err(format!(
                "{count} seeds cannot be cut into {of} shards: every shard needs at least one seed"
            ));
        }
        Ok(Seeds::Shard {
            start,
            count,
            index,
            of,
        })
    }

    /// A range of `count` seeds from `start`.
    ///
    /// # Errors
    /// If the range would run past the largest seed.
    pub fn range(start: u64, count: u64) -> Result<Seeds, String> {
        match count.checked_sub(1).map(|n| start.checked_add(n)) {
            Some(Some(_)) => Ok(Seeds::Range { start, count }),
            Some(None) => Err(format!(
                "seeds {start} and the {} after it run past the largest seed, {}",
                count - 1,
                u64::MAX
            )),
            None => Err("at least one seed is needed".to_owned()),
        }
    }
}
