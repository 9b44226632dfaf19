//! A build's position in [`Plan::builds`](super::Plan::builds), typed: what every per-build
//! table of a run (the input digests, the published images, what a split runner keeps) is
//! indexed by, so a list's or an instance's number cannot be taken for one.

use std::ops::{Index, IndexMut};

/// The position of a build in its plan's `builds`. A plan's JSON names builds by id
/// (`Build::id`); [`super::Plan::build_index`] maps an id to its `BuildIx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuildIx(u32);

impl BuildIx {
    /// The build at `position` of a plan's `builds`.
    pub fn new(position: usize) -> Self {
        Self(u32::try_from(position).expect("a plan holds fewer than 2^32 builds"))
    }

    pub fn get(self) -> usize {
        self.0 as usize
    }

    /// Every position of a table of `len` builds, in order.
    pub fn all(len: usize) -> impl DoubleEndedIterator<Item = Self> {
        (0..len).map(Self::new)
    }
}

impl std::fmt::Display for BuildIx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "build #{}", self.0)
    }
}

// A per-build table is a `Vec` (or slice) in the plan's build order: `plan.builds[ix]`,
// `digests.builds[ix]`.
impl<T> Index<BuildIx> for [T] {
    type Output = T;
    fn index(&self, ix: BuildIx) -> &T {
        &self[ix.get()]
    }
}

impl<T> IndexMut<BuildIx> for [T] {
    fn index_mut(&mut self, ix: BuildIx) -> &mut T {
        &mut self[ix.get()]
    }
}

impl<T> Index<BuildIx> for Vec<T> {
    type Output = T;
    fn index(&self, ix: BuildIx) -> &T {
        &self[ix.get()]
    }
}

impl<T> IndexMut<BuildIx> for Vec<T> {
    fn index_mut(&mut self, ix: BuildIx) -> &mut T {
        &mut self[ix.get()]
    }
}

#[cfg(test)]
mod tests {
    use super::BuildIx;

    #[test]
    fn indexes_per_build_tables_in_plan_order() {
        let digests = vec!["a", "b", "c"];
        let all: Vec<BuildIx> = BuildIx::all(digests.len()).collect();
        assert_eq!(all.iter().map(|&b| digests[b]).collect::<Vec<_>>(), digests);
        assert_eq!(digests[..][BuildIx::new(1)], "b");
        let mut flags = vec![false; 3];
        flags[BuildIx::new(2)] = true;
        assert_eq!(flags, [false, false, true]);
    }
}
