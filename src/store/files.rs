//! Stored files: attachments and import files (docs/vendor-api.md D-17, H-8). With a
//! files dir (the default with SQLite) the bytes are a file named by the id;
//! without one (PostgreSQL shared by several nodes) they are 1 MiB chunks in
//! the database. Either way a file is written before its row commits, so a
//! crash leaves no row without its bytes, and it is read back in chunks.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{Arg, Store, StoreError, StoreResult, WritePool, on_pool};
use crate::domain::ids::{CustomerId, FileId};
use crate::domain::storage::FileStorage;

const CHUNK: usize = 1 << 20;

#[derive(Clone)]
pub struct Files {
    store: Store,
    dir: Option<PathBuf>,
}

/// Reads a stored file a chunk at a time.
pub struct FileCursor {
    source: Source,
    /// Bytes of the next chunk that come before the offset asked for.
    skip: usize,
}

enum Source {
    Disk(tokio::fs::File),
    Db { store: Store, id: i64, next: i64 },
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Failed(format!("file storage: {e}"))
}

impl Files {
    pub fn new(store: Store, dir: Option<PathBuf>) -> Files {
        Files { store, dir }
    }

    fn path(&self, id: FileId) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(id.to_string()))
    }

    /// Opens a customer's file for reading.
    pub async fn cursor(&self, customer: CustomerId, id: FileId) -> StoreResult<FileCursor> {
        self.cursor_at(customer, id, 0).await
    }

    /// Opens a customer's file for reading from byte `offset`.
    pub async fn cursor_at(&self, customer: CustomerId, id: FileId, offset: u64) -> StoreResult<FileCursor> {
        if self.size(customer, id).await?.is_none() {
            return Err(StoreError::NotFound("file"));
        }
        let in_db: bool = on_pool!(&self.store, p => sqlx::query_scalar("SELECT in_db FROM files WHERE id = $1")
            .bind(id)
            .fetch_one(p)
            .await)?;
        let source = match (in_db, self.path(id)) {
            (false, Some(path)) => {
                let mut f = tokio::fs::File::open(&path).await.map_err(io)?;
                f.seek(std::io::SeekFrom::Start(offset)).await.map_err(io)?;
                Source::Disk(f)
            }
            (false, None) => {
                return Err(StoreError::Failed(format!(
                    "file {id} is kept in a files dir, but QUNFA_FILES_DIR is not set"
                )));
            }
            (true, _) => Source::Db {
                store: self.store.clone(),
                id: id.get(),
                next: (offset / CHUNK as u64) as i64,
            },
        };
        // Disk files were sought; a chunk from the database starts before the offset.
        let skip = if in_db {
            (offset % CHUNK as u64) as usize
        } else {
            0
        };
        Ok(FileCursor { source, skip })
    }
}

impl FileStorage for Files {
    async fn save(&self, customer: CustomerId, src: &Path, now: i64) -> StoreResult<FileId> {
        let size = tokio::fs::metadata(src).await.map_err(io)?.len();
        let in_db = self.dir.is_none();
        on_pool!(&self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO files (customer_id, size, in_db, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(customer)
            .bind(size as i64)
            .bind(in_db)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let id = FileId(id);
            match self.path(id) {
                Some(dest) => copy_durably(src, &dest).await?,
                None => {
                    let mut f = tokio::fs::File::open(src).await.map_err(io)?;
                    let mut seq = 0i64;
                    loop {
                        let chunk = read_chunk(&mut f).await?;
                        if chunk.is_empty() {
                            break;
                        }
                        sqlx::query("INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, $2, $3)")
                            .bind(id)
                            .bind(seq)
                            .bind(chunk)
                            .execute(&mut *tx)
                            .await?;
                        seq += 1;
                    }
                }
            }
            tx.commit().await?;
            Ok(id)
        })
    }

    async fn size(&self, customer: CustomerId, id: FileId) -> StoreResult<Option<u64>> {
        let size: Option<i64> = on_pool!(&self.store, p => sqlx::query_scalar(
            "SELECT size FROM files WHERE id = $1 AND customer_id = $2",
        )
        .bind(id)
        .bind(customer)
        .fetch_optional(p)
        .await)?;
        Ok(size.map(|s| s as u64))
    }

    async fn read(&self, customer: CustomerId, id: FileId) -> StoreResult<Vec<u8>> {
        let mut cursor = self.cursor(customer, id).await?;
        let mut out = Vec::new();
        while let Some(chunk) = cursor.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn delete(&self, customer: CustomerId, ids: &[FileId]) -> StoreResult<()> {
        for &id in ids {
            let gone = self
                .store
                .write(
                    "DELETE FROM files WHERE id = $1 AND customer_id = $2",
                    &[Arg::Int(id.get()), Arg::Int(customer.get())],
                )
                .await?;
            if gone == 1
                && let Some(path) = self.path(id)
            {
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
        }
        Ok(())
    }
}

impl FileCursor {
    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> StoreResult<Option<Vec<u8>>> {
        match &mut self.source {
            Source::Disk(f) => {
                let chunk = read_chunk(f).await?;
                Ok((!chunk.is_empty()).then_some(chunk))
            }
            Source::Db { store, id, next } => {
                let chunk: Option<Vec<u8>> = on_pool!(&*store, p => sqlx::query_scalar(
                    "SELECT data FROM file_chunks WHERE file_id = $1 AND seq = $2",
                )
                .bind(*id)
                .bind(*next)
                .fetch_optional(p)
                .await)?;
                *next += 1;
                let skip = std::mem::take(&mut self.skip);
                Ok(chunk.map(|c| c.get(skip..).unwrap_or_default().to_vec()))
            }
        }
    }
}

async fn read_chunk(f: &mut tokio::fs::File) -> StoreResult<Vec<u8>> {
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    while filled < CHUNK {
        let n = f.read(&mut buf[filled..]).await.map_err(io)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Copies to `dest` through a temporary name and an fsync, so `dest` is
/// either absent or whole.
async fn copy_durably(src: &Path, dest: &Path) -> StoreResult<()> {
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
    }
    let part = dest.with_extension("part");
    tokio::fs::copy(src, &part).await.map_err(io)?;
    let f = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .await
        .map_err(io)?;
    f.sync_all().await.map_err(io)?;
    drop(f);
    tokio::fs::rename(&part, dest).await.map_err(io)?;
    Ok(())
}
