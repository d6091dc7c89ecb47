//! Per-trial configuration cache: loaded once per execution environment and
//! refreshed after a TTL. The serverless form of a once-initialised manager
//! behind a read-write lock with a periodic reload.
//!
//! A stale entry is reloaded inline by the one caller that takes the refresh:
//! that caller awaits the load and returns the new value, while concurrent
//! readers keep getting the old value without waiting. Nothing is spawned,
//! because Lambda freezes the environment once the handler returns: a
//! background refresh could sleep through its TTL and keep a stale webhook
//! URL or secret alive. Only a never-seen key makes its first readers wait,
//! and concurrent first readers share one load.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::ports::StorageError;

struct Entry<V> {
    value: Arc<V>,
    loaded_at: Instant,
    refreshing: bool,
}

/// A first load in flight; every concurrent first reader awaits the same cell.
type FirstLoad<V> = Arc<OnceCell<Arc<Option<V>>>>;

/// A TTL cache of `Option<V>` keyed by `K` (e.g. `TrialId` -> `Trial`).
pub struct ConfigCache<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, Entry<Option<V>>>>,
    // First loads in flight, shared by concurrent first readers.
    first_loads: Mutex<HashMap<K, FirstLoad<V>>>,
}

impl<K, V> ConfigCache<K, V>
where
    K: Eq + Hash + Clone,
{
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: RwLock::new(HashMap::new()), first_loads: Mutex::new(HashMap::new()) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Returns the cached value, loading it with `load` on first use. Once the
    /// entry is older than the TTL, the first caller to see it reloads it
    /// inline and returns the new value; callers arriving during that reload
    /// get the old value at once. A failed reload keeps the old value (and
    /// returns it); the next read tries again.
    pub async fn get<F, Fut>(&self, key: &K, load: F) -> Result<Arc<Option<V>>, StorageError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, StorageError>>,
    {
        let stale = {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            match entries.get(key) {
                Some(e) if e.loaded_at.elapsed() < self.ttl => return Ok(e.value.clone()),
                Some(e) => Some((e.value.clone(), e.refreshing)),
                None => None,
            }
        };
        match stale {
            Some((value, true)) => Ok(value),
            Some((value, false)) => match self.take_refresh(key) {
                Some(refresh) => Ok(refresh.finish(load().await).unwrap_or(value)),
                None => Ok(value),
            },
            None => self.first_load(key, load).await,
        }
    }

    /// The cached value while it is younger than the TTL; never loads. For a
    /// caller that loads its misses together with other reads (one request).
    pub fn fresh(&self, key: &K) -> Option<Arc<Option<V>>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|e| e.loaded_at.elapsed() < self.ttl).map(|e| e.value.clone())
    }

    /// Caches a value the caller loaded itself (see [`ConfigCache::fresh`]);
    /// its TTL runs from now.
    pub fn store(&self, key: K, value: Option<V>) -> Arc<Option<V>> {
        let value = Arc::new(value);
        let entry = Entry { value: value.clone(), loaded_at: Instant::now(), refreshing: false };
        self.entries.write().unwrap_or_else(|p| p.into_inner()).insert(key, entry);
        value
    }

    /// Changes a cached value in place (after a write through this process
    /// that the value records, such as a moved audit chain head), keeping its
    /// age: the TTL still bounds how long the rest of it is trusted.
    pub fn amend(&self, key: &K, f: impl FnOnce(&mut V))
    where
        V: Clone,
    {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.get_mut(key) {
            if let Some(v) = e.value.as_ref() {
                let mut v = v.clone();
                f(&mut v);
                e.value = Arc::new(Some(v));
            }
        }
    }

    /// Drops a key so the next read loads it (after a write through this process).
    pub fn invalidate(&self, key: &K) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Marks the entry as refreshing, unless another caller already did.
    fn take_refresh(&self, key: &K) -> Option<Refresh<'_, K, V>> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match entries.get_mut(key) {
            Some(e) if !e.refreshing => {
                e.refreshing = true;
                Some(Refresh { cache: self, key: key.clone(), done: false })
            }
            _ => None,
        }
    }

    async fn first_load<F, Fut>(&self, key: &K, load: F) -> Result<Arc<Option<V>>, StorageError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, StorageError>>,
    {
        let cell = {
            let mut loads = self.first_loads.lock().unwrap_or_else(|p| p.into_inner());
            loads.entry(key.clone()).or_default().clone()
        };
        let result = cell
            .get_or_try_init(|| async {
                let v = Arc::new(load().await?);
                self.entries
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone(), Entry { value: v.clone(), loaded_at: Instant::now(), refreshing: false });
                Ok::<_, StorageError>(v)
            })
            .await
            .cloned();
        self.first_loads.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        result
    }
}

/// The one refresh of a stale entry in flight. If the caller's future is
/// dropped mid-load (a timeout, a cancelled request), dropping this clears the
/// mark, so the entry is not left "refreshing" forever.
struct Refresh<'a, K: Eq + Hash + Clone, V> {
    cache: &'a ConfigCache<K, V>,
    key: K,
    done: bool,
}

impl<K: Eq + Hash + Clone, V> Refresh<'_, K, V> {
    /// Keeps a loaded value and returns it; on failure keeps the old value
    /// (returns `None`) and lets the next read try again.
    fn finish(mut self, result: Result<Option<V>, StorageError>) -> Option<Arc<Option<V>>> {
        self.done = true;
        let mut entries = self.cache.entries.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(v) => {
                let value = Arc::new(v);
                entries.insert(self.key.clone(), Entry { value: value.clone(), loaded_at: Instant::now(), refreshing: false });
                Some(value)
            }
            Err(e) => {
                tracing::warn!(error = e.code(), "config refresh failed; serving the previous value");
                if let Some(entry) = entries.get_mut(&self.key) {
                    entry.refreshing = false;
                }
                None
            }
        }
    }
}

impl<K: Eq + Hash + Clone, V> Drop for Refresh<'_, K, V> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut entries = self.cache.entries.write().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(&self.key) {
            entry.refreshing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Loader = std::pin::Pin<Box<dyn Future<Output = Result<Option<usize>, StorageError>> + Send>>;

    fn counting_loader(count: Arc<AtomicUsize>, delay: Duration) -> impl FnOnce() -> Loader + Send + 'static {
        move || {
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Some(n))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_after_the_ttl_and_not_before() {
        // GIVEN a cache with a 300 s TTL and a loaded key
        let cache = Arc::new(ConfigCache::<&str, usize>::new(Duration::from_secs(300)));
        let loads = Arc::new(AtomicUsize::new(0));
        assert_eq!(*cache.get(&"t1", counting_loader(loads.clone(), Duration::ZERO)).await.unwrap(), Some(1));
        // WHEN read again just before the TTL
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(*cache.get(&"t1", counting_loader(loads.clone(), Duration::ZERO)).await.unwrap(), Some(1));
        // THEN nothing reloaded
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // WHEN read after the TTL
        tokio::time::advance(Duration::from_secs(2)).await;
        // THEN that read reloads and returns the new value
        assert_eq!(*cache.get(&"t1", counting_loader(loads.clone(), Duration::ZERO)).await.unwrap(), Some(2));
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        // AND the next read is served from the cache
        assert_eq!(*cache.get(&"t1", counting_loader(loads.clone(), Duration::ZERO)).await.unwrap(), Some(2));
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_stored_by_the_caller_is_fresh_until_its_ttl_and_never_loads() {
        // GIVEN a value the caller read itself, stored at t0
        let cache = ConfigCache::<&str, usize>::new(Duration::from_secs(300));
        assert!(cache.fresh(&"t1").is_none());
        cache.store("t1", Some(7));
        // WHEN looked up within the TTL THEN it is served; after the TTL it is a miss
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(cache.fresh(&"t1").as_deref(), Some(&Some(7)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.fresh(&"t1").is_none());
        // AND `get` sees a stored value as loaded
        cache.store("t1", Some(8));
        assert_eq!(*cache.get(&"t1", || async { Ok(Some(0)) }).await.unwrap(), Some(8));
    }

    #[tokio::test(start_paused = true)]
    async fn the_refreshing_caller_sees_the_new_value_when_its_call_returns() {
        // GIVEN a stale entry whose reload takes 2 s
        let cache = Arc::new(ConfigCache::<&str, usize>::new(Duration::from_secs(5)));
        cache.get(&"t1", || async { Ok(Some(1)) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        // WHEN one caller reads it
        let started = Instant::now();
        let v = cache
            .get(&"t1", || async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok(Some(2))
            })
            .await
            .unwrap();
        // THEN it waited for the reload and got its result: nothing was left to run after the call
        assert_eq!(*v, Some(2));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_refresh_runs_on_the_callers_task_and_concurrent_readers_get_the_old_value_at_once() {
        // GIVEN a stale entry whose reload takes 10 s
        let cache = Arc::new(ConfigCache::<&str, usize>::new(Duration::from_secs(5)));
        let loads = Arc::new(AtomicUsize::new(0));
        cache.get(&"t1", counting_loader(loads.clone(), Duration::ZERO)).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        // WHEN one caller (its own task) takes the refresh, recording the task the load runs on
        let load_task = Arc::new(Mutex::new(None));
        let refresher = {
            let (c, l, seen) = (cache.clone(), loads.clone(), load_task.clone());
            tokio::spawn(async move {
                let load = counting_loader(l, Duration::from_secs(10));
                *c.get(&"t1", move || {
                    *seen.lock().unwrap() = tokio::task::try_id();
                    load()
                })
                .await
                .unwrap()
            })
        };
        tokio::task::yield_now().await;
        // AND 50 readers arrive while the slow refresh runs
        let started = Instant::now();
        let mut readers = Vec::new();
        for _ in 0..50 {
            let (c, l) = (cache.clone(), loads.clone());
            readers.push(tokio::spawn(async move { *c.get(&"t1", counting_loader(l, Duration::from_secs(10))).await.unwrap() }));
        }
        // THEN each reader is served the old value without waiting
        for r in readers {
            assert_eq!(r.await.unwrap(), Some(1));
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "readers waited on the refresh");
        // AND the refreshing caller returns the new value once its load is done
        let refresher_id = refresher.id();
        assert_eq!(refresher.await.unwrap(), Some(2));
        // AND the load ran on that caller's task (nothing was spawned), exactly once
        assert_eq!(*load_task.lock().unwrap(), Some(refresher_id));
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_refresh_lets_the_next_reader_refresh() {
        // GIVEN a stale entry and a refresh whose caller gives up after 1 s
        let cache = Arc::new(ConfigCache::<&str, usize>::new(Duration::from_secs(5)));
        cache.get(&"t1", || async { Ok(Some(1)) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        let slow = cache.get(&"t1", || async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Some(2))
        });
        assert!(tokio::time::timeout(Duration::from_secs(1), slow).await.is_err());
        // WHEN the next reader comes
        let v = cache.get(&"t1", || async { Ok(Some(3)) }).await.unwrap();
        // THEN it takes the refresh instead of finding it stuck "in flight"
        assert_eq!(*v, Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_readers_share_one_load() {
        let cache = Arc::new(ConfigCache::<&str, usize>::new(Duration::from_secs(300)));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..20 {
            let c = cache.clone();
            let l = loads.clone();
            handles.push(tokio::spawn(async move { *c.get(&"t1", counting_loader(l, Duration::from_secs(1))).await.unwrap() }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap(), Some(1));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_serving_the_old_value() {
        // GIVEN a stale entry
        let cache = Arc::new(ConfigCache::<&str, usize>::new(Duration::from_secs(5)));
        cache.get(&"t1", || async { Ok(Some(7)) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        // WHEN its refresh fails
        let v = cache.get(&"t1", || async { Err(StorageError::Unavailable("throttled".into())) }).await.unwrap();
        // THEN the old value is served
        assert_eq!(*v, Some(7));
        // AND the next read tries again and gets the new value
        assert_eq!(*cache.get(&"t1", || async { Ok(Some(8)) }).await.unwrap(), Some(8));
    }
}
