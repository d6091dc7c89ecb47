//! Per-trial configuration cache: loaded once per execution environment and
//! refreshed after a TTL. The serverless form of a once-initialised manager
//! behind a read-write lock with a periodic reload.
//!
//! Readers never wait on a refresh: a stale entry is served while exactly one
//! caller reloads it in the background (stale-while-revalidate). Only a
//! never-seen key makes its first reader wait, and concurrent first readers
//! share one load.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::error::Error;

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
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: RwLock::new(HashMap::new()), first_loads: Mutex::new(HashMap::new()) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Returns the cached value, loading it with `load` on first use and
    /// refreshing it in the background once older than the TTL. A failed
    /// background refresh keeps serving the old value and tries again next read.
    pub async fn get<F, Fut>(self: &Arc<Self>, key: &K, load: F) -> Result<Arc<Option<V>>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<V>, Error>> + Send + 'static,
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
            Some((value, already_refreshing)) => {
                if !already_refreshing && self.mark_refreshing(key) {
                    let this = Arc::clone(self);
                    let key = key.clone();
                    tokio::spawn(async move {
                        let result = load().await;
                        this.finish_refresh(key, result);
                    });
                }
                Ok(value)
            }
            None => self.first_load(key, load).await,
        }
    }

    /// Drops a key so the next read loads it (after a write through this process).
    pub fn invalidate(&self, key: &K) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    fn mark_refreshing(&self, key: &K) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match entries.get_mut(key) {
            Some(e) if !e.refreshing => {
                e.refreshing = true;
                true
            }
            _ => false,
        }
    }

    fn finish_refresh(&self, key: K, result: Result<Option<V>, Error>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(v) => {
                entries.insert(key, Entry { value: Arc::new(v), loaded_at: Instant::now(), refreshing: false });
            }
            Err(e) => {
                tracing::warn!(error = e.code(), "config refresh failed; serving the previous value");
                if let Some(entry) = entries.get_mut(&key) {
                    entry.refreshing = false;
                }
            }
        }
    }

    async fn first_load<F, Fut>(&self, key: &K, load: F) -> Result<Arc<Option<V>>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, Error>>,
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
                Ok::<_, Error>(v)
            })
            .await
            .cloned();
        self.first_loads.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Loader = std::pin::Pin<Box<dyn Future<Output = Result<Option<usize>, Error>> + Send>>;

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
        // WHEN read after the TTL: the stale value is served and one refresh starts
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(*cache.get(&"t1", counting_loader(loads.clone(), Duration::ZERO)).await.unwrap(), Some(1));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        // THEN the next read sees the refreshed value
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert_eq!(*cache.get(&"t1", counting_loader(loads.clone(), Duration::ZERO)).await.unwrap(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_reads_during_a_refresh_never_wait_and_refresh_once() {
        // GIVEN a stale entry whose reload takes 10 s
        let cache = Arc::new(ConfigCache::<&str, usize>::new(Duration::from_secs(5)));
        let loads = Arc::new(AtomicUsize::new(0));
        cache.get(&"t1", counting_loader(loads.clone(), Duration::ZERO)).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        // WHEN 50 readers arrive while the slow refresh runs
        let started = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..50 {
            let c = cache.clone();
            let l = loads.clone();
            handles.push(tokio::spawn(async move { *c.get(&"t1", counting_loader(l, Duration::from_secs(10))).await.unwrap() }));
        }
        for h in handles {
            // THEN each is served the old value at once
            assert_eq!(h.await.unwrap(), Some(1));
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "readers waited on the refresh");
        // AND exactly one refresh ran
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(loads.load(Ordering::SeqCst), 2);
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
        let cache = Arc::new(ConfigCache::<&str, usize>::new(Duration::from_secs(5)));
        cache.get(&"t1", || async { Ok(Some(7)) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        let v = cache.get(&"t1", || async { Err(Error::Unavailable("throttled".into())) }).await.unwrap();
        assert_eq!(*v, Some(7));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(*cache.get(&"t1", || async { Ok(Some(8)) }).await.unwrap(), Some(7), "stale value served while the retry refresh runs");
    }
}
