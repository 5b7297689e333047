//! Process-wide state plugins share across instances: key/value data with
//! compare-and-swap and named queues, both scoped by vm_id as in Envoy.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use tokio::sync::Notify;

use super::abi::status;

struct Entry {
    value: Bytes,
    cas: u32,
}

fn data() -> &'static Mutex<HashMap<(String, String), Entry>> {
    static DATA: OnceLock<Mutex<HashMap<(String, String), Entry>>> = OnceLock::new();
    DATA.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `(value, cas)` or `None` when absent.
pub fn get_data(vm_id: &str, key: &str) -> Option<(Bytes, u32)> {
    lock(data())
        .get(&(vm_id.to_string(), key.to_string()))
        .map(|e| (e.value.clone(), e.cas))
}

/// Sets `key`; a non-zero `cas` must equal the current one (CAS_MISMATCH otherwise).
pub fn set_data(vm_id: &str, key: &str, value: Bytes, cas: u32) -> i32 {
    let mut map = lock(data());
    let entry = map
        .entry((vm_id.to_string(), key.to_string()))
        .or_insert(Entry {
            value: Bytes::new(),
            cas: 0,
        });
    if cas != 0 && cas != entry.cas {
        return status::CAS_MISMATCH;
    }
    entry.value = value;
    // 0 means "no CAS" to the SDKs: skip it on wrap.
    entry.cas = entry.cas.wrapping_add(1).max(1);
    status::OK
}

/// Wakes a plugin's driver when one of its queues gets data.
#[derive(Default)]
pub struct PluginEvents {
    pub notify: Notify,
    pub ready: Mutex<Vec<u32>>,
}

struct Queue {
    data: VecDeque<Bytes>,
    owner: Weak<PluginEvents>,
}

#[derive(Default)]
struct Queues {
    by_name: HashMap<(String, String), u32>,
    by_token: HashMap<u32, Queue>,
    next: u32,
}

/// Queues hold at most this many items; more enqueues are refused.
const QUEUE_CAPACITY: usize = 10_000;

fn queues() -> &'static Mutex<Queues> {
    static QUEUES: OnceLock<Mutex<Queues>> = OnceLock::new();
    QUEUES.get_or_init(Default::default)
}

/// Registers (or re-registers) `name` for `owner`, returning its token.
pub fn register_queue(vm_id: &str, name: &str, owner: &Arc<PluginEvents>) -> u32 {
    let mut q = lock(queues());
    if let Some(token) = q
        .by_name
        .get(&(vm_id.to_string(), name.to_string()))
        .copied()
    {
        if let Some(queue) = q.by_token.get_mut(&token) {
            queue.owner = Arc::downgrade(owner);
        }
        return token;
    }
    q.next += 1;
    let token = q.next;
    q.by_name
        .insert((vm_id.to_string(), name.to_string()), token);
    q.by_token.insert(
        token,
        Queue {
            data: VecDeque::new(),
            owner: Arc::downgrade(owner),
        },
    );
    token
}

pub fn resolve_queue(vm_id: &str, name: &str) -> Option<u32> {
    lock(queues())
        .by_name
        .get(&(vm_id.to_string(), name.to_string()))
        .copied()
}

pub fn enqueue(token: u32, value: Bytes) -> i32 {
    let owner = {
        let mut q = lock(queues());
        let Some(queue) = q.by_token.get_mut(&token) else {
            return status::NOT_FOUND;
        };
        if queue.data.len() >= QUEUE_CAPACITY {
            return status::INTERNAL_FAILURE;
        }
        queue.data.push_back(value);
        queue.owner.upgrade()
    };
    if let Some(owner) = owner {
        lock(&owner.ready).push(token);
        owner.notify.notify_one();
    }
    status::OK
}

/// `Err(status)`: NOT_FOUND for an unknown token, EMPTY for an empty queue.
pub fn dequeue(token: u32) -> Result<Bytes, i32> {
    let mut q = lock(queues());
    let queue = q.by_token.get_mut(&token).ok_or(status::NOT_FOUND)?;
    queue.data.pop_front().ok_or(status::EMPTY)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cas_protects_concurrent_updates() {
        assert!(get_data("vm-shared-test", "k").is_none());
        assert_eq!(
            set_data("vm-shared-test", "k", Bytes::from_static(b"1"), 0),
            status::OK
        );
        let (v, cas) = get_data("vm-shared-test", "k").unwrap();
        assert_eq!(&v[..], b"1");
        assert_eq!(
            set_data("vm-shared-test", "k", Bytes::from_static(b"2"), cas),
            status::OK
        );
        assert_eq!(
            set_data("vm-shared-test", "k", Bytes::from_static(b"3"), cas),
            status::CAS_MISMATCH
        );
        assert!(get_data("other-vm", "k").is_none(), "scoped by vm_id");
    }

    #[test]
    fn queues_deliver_in_order_and_notify_owner() {
        let owner = Arc::new(PluginEvents::default());
        let t = register_queue("vm-q-test", "q", &owner);
        assert_eq!(resolve_queue("vm-q-test", "q"), Some(t));
        assert_eq!(resolve_queue("vm-q-test", "nope"), None);
        assert_eq!(dequeue(t), Err(status::EMPTY));
        assert_eq!(enqueue(t, Bytes::from_static(b"a")), status::OK);
        assert_eq!(enqueue(t, Bytes::from_static(b"b")), status::OK);
        assert_eq!(*owner.ready.lock().unwrap(), vec![t, t]);
        assert_eq!(&dequeue(t).unwrap()[..], b"a");
        assert_eq!(&dequeue(t).unwrap()[..], b"b");
        assert_eq!(enqueue(u32::MAX, Bytes::new()), status::NOT_FOUND);
    }
}
