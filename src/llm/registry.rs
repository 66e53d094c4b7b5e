//! The model registry: backends by model name, loaded on first use. Before a model is
//! loaded its memory is estimated; when the models already loaded and the new one would
//! exceed the budget, the least recently used idle models are unloaded first. A model in use
//! (a request holds its handle) is never unloaded: the caller waits until it is released.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, Notify};

use super::{Backend, LlmError};

/// What a loader returns: the estimate (MB) is asked for before the load.
pub trait Loader: Send + Sync {
    /// Memory the model `name` will take once loaded, in MB (0 for remote backends).
    fn estimate_mb(&self, name: &str) -> Result<u64, LlmError>;
    /// Loads the model `name` (blocking: called on a blocking thread).
    fn load(&self, name: &str) -> Result<Arc<dyn Backend>, LlmError>;
}

struct Loaded {
    backend: Arc<dyn Backend>,
    mb: u64,
    last_used: Instant,
}

/// Backends by model name, loaded on demand within a memory budget.
pub struct Registry {
    loader: Arc<dyn Loader>,
    budget_mb: u64,
    loaded: Mutex<BTreeMap<String, Loaded>>,
    /// Woken whenever a handle may have been released.
    released: Notify,
}

/// A handle on a loaded backend; while it lives the model stays loaded.
pub struct ModelHandle<'a> {
    backend: Arc<dyn Backend>,
    registry: &'a Registry,
}

impl std::ops::Deref for ModelHandle<'_> {
    type Target = Arc<dyn Backend>;
    fn deref(&self) -> &Self::Target {
        &self.backend
    }
}

impl Drop for ModelHandle<'_> {
    fn drop(&mut self) {
        self.registry.released.notify_waiters();
    }
}

impl Registry {
    pub fn new(loader: Arc<dyn Loader>, budget_mb: u64) -> Self {
        Registry {
            loader,
            budget_mb,
            loaded: Mutex::new(BTreeMap::new()),
            released: Notify::new(),
        }
    }

    /// A registry over backends that exist already (tests, benchmarks): nothing is loaded or
    /// evicted; unknown names fall back to `default`.
    pub fn fixed(backends: BTreeMap<String, Arc<dyn Backend>>) -> Self {
        struct Fixed(BTreeMap<String, Arc<dyn Backend>>);
        impl Loader for Fixed {
            fn estimate_mb(&self, _: &str) -> Result<u64, LlmError> {
                Ok(0)
            }
            fn load(&self, name: &str) -> Result<Arc<dyn Backend>, LlmError> {
                self.0
                    .get(name)
                    .or_else(|| self.0.get("default"))
                    .cloned()
                    .ok_or_else(|| LlmError::Inference(format!("no backend for model {name:?}")))
            }
        }
        Registry::new(Arc::new(Fixed(backends)), u64::MAX)
    }

    /// The names of the models loaded now, least recently used first.
    pub async fn loaded(&self) -> Vec<String> {
        let loaded = self.loaded.lock().await;
        let mut v: Vec<_> = loaded
            .iter()
            .map(|(n, l)| (l.last_used, n.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect()
    }

    /// The backend of model `name`, loading it (and unloading idle models to make room)
    /// when needed. Waits while the models that would have to go are in use.
    pub async fn get(&self, name: &str) -> Result<ModelHandle<'_>, LlmError> {
        let need = self.loader.estimate_mb(name)?;
        if need > self.budget_mb {
            return Err(LlmError::OverBudget {
                model: name.to_string(),
                need_mb: need,
                budget_mb: self.budget_mb,
            });
        }
        loop {
            let released = self.released.notified();
            let mut loaded = self.loaded.lock().await;
            if let Some(l) = loaded.get_mut(name) {
                l.last_used = Instant::now();
                return Ok(self.handle(l.backend.clone()));
            }
            // Unload idle models, least recently used first, until the new one fits.
            let mut used: u64 = loaded.values().map(|l| l.mb).sum();
            while used + need > self.budget_mb {
                let idle = loaded
                    .iter()
                    .filter(|(_, l)| Arc::strong_count(&l.backend) == 1)
                    .min_by_key(|(_, l)| l.last_used)
                    .map(|(n, _)| n.clone());
                let Some(victim) = idle else { break };
                if let Some(l) = loaded.remove(&victim) {
                    tracing::info!(model = %victim, mb = l.mb, "unloading the least recently used model");
                    used -= l.mb;
                    // Dropping the last handle stops its engine: do it off the runtime.
                    tokio::task::spawn_blocking(move || drop(l));
                }
            }
            if used + need <= self.budget_mb {
                let loader = self.loader.clone();
                let n = name.to_string();
                let backend = tokio::task::spawn_blocking(move || loader.load(&n))
                    .await
                    .map_err(|e| LlmError::Inference(format!("loading {name}: {e}")))??;
                tracing::info!(model = %name, mb = need, "model loaded");
                loaded.insert(
                    name.to_string(),
                    Loaded {
                        backend: backend.clone(),
                        mb: need,
                        last_used: Instant::now(),
                    },
                );
                return Ok(self.handle(backend));
            }
            // Everything that would have to go is busy: wait for a release.
            drop(loaded);
            released.await;
        }
    }

    fn handle(&self, backend: Arc<dyn Backend>) -> ModelHandle<'_> {
        ModelHandle {
            backend,
            registry: self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::fake::FakeBackend;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Models "a", "b", "c" of 40 MB, "huge" of 500 MB; counts loads.
    struct Sized(AtomicUsize);
    impl Loader for Sized {
        fn estimate_mb(&self, name: &str) -> Result<u64, LlmError> {
            Ok(if name == "huge" { 500 } else { 40 })
        }
        fn load(&self, _: &str) -> Result<Arc<dyn Backend>, LlmError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(FakeBackend::constant("{}"))
        }
    }

    fn registry(budget: u64) -> (Arc<Sized>, Registry) {
        let loader = Arc::new(Sized(AtomicUsize::new(0)));
        (loader.clone(), Registry::new(loader, budget))
    }

    #[tokio::test]
    async fn loads_on_first_use_and_reuses() {
        let (loader, reg) = registry(100);
        assert!(reg.loaded().await.is_empty());
        drop(reg.get("a").await.unwrap());
        drop(reg.get("a").await.unwrap());
        assert_eq!(loader.0.load(Ordering::SeqCst), 1);
        assert_eq!(reg.loaded().await, vec!["a"]);
    }

    #[tokio::test]
    async fn evicts_the_least_recently_used_idle_model() {
        let (loader, reg) = registry(100); // room for two
        drop(reg.get("a").await.unwrap());
        drop(reg.get("b").await.unwrap());
        drop(reg.get("a").await.unwrap()); // b is now the least recently used
        drop(reg.get("c").await.unwrap());
        assert_eq!(reg.loaded().await, vec!["a", "c"]);
        assert_eq!(loader.0.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_model_in_use_is_never_evicted_the_caller_waits() {
        let (_, reg) = registry(50); // room for one
        let reg = Arc::new(reg);
        let a = reg.get("a").await.unwrap();
        let r2 = reg.clone();
        let waiter = tokio::spawn(async move {
            let b = r2.get("b").await.map(|_| ());
            (b, r2.loaded().await)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "b must wait while a is in use");
        assert_eq!(reg.loaded().await, vec!["a"]);
        drop(a);
        let (b, now) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("b loads once a is released")
            .unwrap();
        b.unwrap();
        assert_eq!(now, vec!["b"]);
    }

    #[tokio::test]
    async fn a_model_over_the_whole_budget_is_refused_by_name() {
        let (loader, reg) = registry(100);
        let err = reg.get("huge").await.map(|_| ()).unwrap_err();
        assert!(matches!(err, LlmError::OverBudget { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("huge") && msg.contains("500") && msg.contains("100"),
            "{msg}"
        );
        assert_eq!(loader.0.load(Ordering::SeqCst), 0);
    }
}
