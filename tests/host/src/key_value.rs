//! `fermyon:spin/key-value@2.0.0`: the stores a runtime config defines (as
//! `spin up --runtime-config-file` and the shim's `/runtime-config.toml` do),
//! each of `type = "spin"` without a `path`, which Spin keeps in memory for the
//! life of the app; and the `default` store, which Spin has without a runtime
//! config too (in SQLite under `.spin/`: this host keeps it in memory, as the
//! project's runtime config asks). A component may open only the stores that
//! its `key_value_stores` lists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::key_value::{Error, Host, HostStore};
use crate::server::State;

type StoreMap = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// The stores of one application that its component may open.
pub struct KeyValueStores {
    stores: HashMap<String, StoreMap>,
}

impl KeyValueStores {
    /// The stores of `allowed` (the component's `key_value_stores`), each
    /// empty. Every label must be defined: `default` always is.
    pub fn new(allowed: &[String]) -> KeyValueStores {
        KeyValueStores {
            stores: allowed
                .iter()
                .map(|label| (label.clone(), StoreMap::default()))
                .collect(),
        }
    }
}

/// An open store: the map it reads and writes.
pub struct StoreHandle(Arc<Mutex<HashMap<String, Vec<u8>>>>);

impl StoreHandle {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Vec<u8>>) -> T) -> Result<T, Error> {
        let mut map = self
            .0
            .lock()
            .map_err(|_| Error::Other("the store's lock is poisoned".into()))?;
        Ok(f(&mut map))
    }
}

impl Host for State {}

impl HostStore for State {
    async fn open(&mut self, label: String) -> Result<Resource<StoreHandle>, Error> {
        let Some(store) = self.app.key_value.stores.get(&label) else {
            return Err(Error::AccessDenied);
        };
        let handle = StoreHandle(store.clone());
        self.table.push(handle).map_err(|_| Error::StoreTableFull)
    }

    async fn get(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.store(&store)?.with(|map| map.get(&key).cloned())
    }

    async fn set(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        self.store(&store)?.with(|map| {
            map.insert(key, value);
        })
    }

    async fn delete(&mut self, store: Resource<StoreHandle>, key: String) -> Result<(), Error> {
        self.store(&store)?.with(|map| {
            map.remove(&key);
        })
    }

    async fn exists(&mut self, store: Resource<StoreHandle>, key: String) -> Result<bool, Error> {
        self.store(&store)?.with(|map| map.contains_key(&key))
    }

    async fn get_keys(&mut self, store: Resource<StoreHandle>) -> Result<Vec<String>, Error> {
        self.store(&store)?
            .with(|map| map.keys().cloned().collect())
    }

    async fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl State {
    fn store(&self, store: &Resource<StoreHandle>) -> Result<&StoreHandle, Error> {
        self.table
            .get(store)
            .map_err(|err| Error::Other(err.to_string()))
    }
}
