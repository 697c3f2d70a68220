//! `fermyon:spin/key-value@2.0.0` with the default store only, kept in memory
//! for the life of the host, as containerd-shim-spin keeps it (`spin up` keeps it
//! in a SQLite file under `.spin/`). A component may open only the stores that
//! its `key_value_stores` lists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::key_value::{Error, Host, HostStore};
use crate::server::State;

const DEFAULT_STORE: &str = "default";

/// The stores of one application. The manifest may list no store but
/// `default` (the host has no runtime config to define others).
pub struct KeyValueStores {
    default_allowed: bool,
    default: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl KeyValueStores {
    pub fn new(allowed: &[String]) -> KeyValueStores {
        KeyValueStores {
            default_allowed: allowed.iter().any(|label| label == DEFAULT_STORE),
            default: Default::default(),
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
        let stores = &self.app.key_value;
        if label != DEFAULT_STORE || !stores.default_allowed {
            return Err(Error::AccessDenied);
        }
        self.table
            .push(StoreHandle(stores.default.clone()))
            .map_err(|_| Error::StoreTableFull)
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
