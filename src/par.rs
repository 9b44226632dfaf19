//! Data parallelism on rayon's pool that keeps the results, and the error reported, in input
//! order: a config with two mistakes names the same one on every run.

use rayon::iter::{IndexedParallelIterator, IntoParallelIterator, ParallelIterator};

/// Maps `items` in parallel. Returns what a sequential loop would: all results in order, or
/// the error of the earliest failing item.
pub fn try_map<I, U, E>(
    items: I,
    f: impl Fn(I::Item) -> Result<U, E> + Sync + Send,
) -> Result<Vec<U>, E>
where
    I: IntoParallelIterator,
    I::Iter: IndexedParallelIterator,
    U: Send,
    E: Send,
{
    let results: Vec<Result<U, E>> = items.into_par_iter().map(f).collect();
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_error_in_input_order() {
        let r = super::try_map(0..1000, |i| if i % 100 == 37 { Err(i) } else { Ok(i * 2) });
        assert_eq!(r, Err(37));
        let r: Result<Vec<i32>, ()> = super::try_map(vec![1, 2, 3], |i| Ok(i + 1));
        assert_eq!(r, Ok(vec![2, 3, 4]));
    }
}
