//! The in-memory store (`--store memory`): nothing survives the process; for tests and
//! for a directory that does not need to.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::{Store, StoreFuture};
use crate::rd::Registration;

#[derive(Debug, Default)]
struct Tables {
    regs: BTreeMap<u64, Registration>,
    /// (sector, endpoint name) → id.
    names: HashMap<(Option<String>, String), u64>,
    next_id: u64,
}

/// Registrations in a map of the process.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<Tables>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Tables {
    fn remove(&mut self, id: u64) -> bool {
        match self.regs.remove(&id) {
            Some(r) => {
                self.names.remove(&(r.d, r.ep));
                true
            }
            None => false,
        }
    }
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory (registrations are lost when the process stops)".into()
    }

    fn register(&self, mut reg: Registration) -> StoreFuture<'_, (u64, bool)> {
        let mut t = self.lock();
        let name = (reg.d.clone(), reg.ep.clone());
        let (id, new) = match t.names.get(&name) {
            Some(&id) => (id, false),
            None => {
                t.next_id += 1;
                (t.next_id, true)
            }
        };
        reg.id = id;
        t.names.insert(name, id);
        t.regs.insert(id, reg);
        Box::pin(std::future::ready(Ok((id, new))))
    }

    fn update(&self, reg: Registration) -> StoreFuture<'_, bool> {
        let mut t = self.lock();
        let found = match t.regs.get_mut(&reg.id) {
            Some(slot) => {
                *slot = reg;
                true
            }
            None => false,
        };
        Box::pin(std::future::ready(Ok(found)))
    }

    fn remove(&self, id: u64) -> StoreFuture<'_, bool> {
        let removed = self.lock().remove(id);
        Box::pin(std::future::ready(Ok(removed)))
    }

    fn get(&self, id: u64) -> StoreFuture<'_, Option<Registration>> {
        let now = Instant::now();
        let r = self
            .lock()
            .regs
            .get(&id)
            .filter(|r| r.expires > now)
            .cloned();
        Box::pin(std::future::ready(Ok(r)))
    }

    fn load(&self) -> StoreFuture<'_, Vec<Registration>> {
        let all = self.lock().regs.values().cloned().collect();
        Box::pin(std::future::ready(Ok(all)))
    }

    fn expire(&self) -> StoreFuture<'_, usize> {
        let now = Instant::now();
        let mut t = self.lock();
        let gone: Vec<u64> = t
            .regs
            .values()
            .filter(|r| r.expires <= now)
            .map(|r| r.id)
            .collect();
        for id in &gone {
            t.remove(*id);
        }
        Box::pin(std::future::ready(Ok(gone.len())))
    }
}
