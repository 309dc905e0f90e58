//! The store's own threads: one writer and a few readers, each owning its SQLite
//! connection, fed through queues. Async callers never block a runtime worker or grow
//! tokio's blocking pool (a join storm once grew the server from 4 to 299 threads),
//! and readers run beside the writer, as WAL allows.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub struct Threads {
    writer: Sender<Job>,
    /// `None`: reads go to the writer (an in-memory database has one connection).
    readers: Option<Sender<Job>>,
}

fn run(mut conn: Connection, queue: Arc<Mutex<Receiver<Job>>>) {
    loop {
        // The lock is held only while taking the next job, on this dedicated thread.
        let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return, // the store was dropped
        };
        // A panicking job must not take the thread (and every later job) with it: its
        // caller sees the reply channel close. Every write is a transaction, so the
        // connection stays usable.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
    }
}

fn spawn(name: &str, conns: Vec<Connection>) -> std::io::Result<Sender<Job>> {
    let (tx, rx) = channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for (i, conn) in conns.into_iter().enumerate() {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || run(conn, rx))?;
    }
    Ok(tx)
}

impl Threads {
    pub fn start(writer: Connection, readers: Vec<Connection>) -> std::io::Result<Self> {
        let readers = if readers.is_empty() {
            None
        } else {
            Some(spawn("store-read", readers)?)
        };
        Ok(Self {
            writer: spawn("store-write", vec![writer])?,
            readers,
        })
    }

    async fn submit<T: Send + 'static>(
        queue: &Sender<Job>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        queue
            .send(job)
            .map_err(|_| StoreError::Backend("the store has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("a store operation failed unexpectedly".into()))?
    }

    /// Runs `f` on the writer's connection, after every write queued before it.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        Self::submit(&self.writer, f).await
    }

    /// Runs `f` on a reader's connection; it sees every write committed before.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        Self::submit(self.readers.as_ref().unwrap_or(&self.writer), f).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let t = Threads::start(Connection::open_in_memory().unwrap(), vec![]).unwrap();
        let r: Result<(), _> = t.write(|_| panic!("boom")).await;
        assert!(r.is_err());
        let n: i64 = t
            .read(|c| {
                c.query_row("SELECT 41 + 1", [], |r| r.get(0))
                    .map_err(|e| StoreError::Backend(e.to_string()))
            })
            .await
            .unwrap();
        assert_eq!(n, 42, "the thread still serves");
    }
}
