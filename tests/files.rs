//! Stored files: in the files dir (SQLite's default) or in the database
//! (PostgreSQL without a files dir), read back byte for byte, per customer.

mod common;

use common::*;
use qunfa::domain::ids::CustomerId;
use qunfa::domain::storage::FileStorage;

async fn files_round_trip_and_stay_with_their_customer(app: TestApp) {
    let owner = CustomerId(app.customer("owner", "pw", 0).await);
    let other = CustomerId(app.customer("other", "pw", 0).await);
    let bytes: Vec<u8> = (0..2_500_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let src = app.data_path().join("upload.bin");
    std::fs::write(&src, &bytes).unwrap();
    let qa = app.app();
    let id = qa.files.save(owner, &src, qa.clock.now()).await.unwrap();

    assert_eq!(qa.files.size(owner, id).await.unwrap(), Some(bytes.len() as u64));
    assert_eq!(qa.files.read(owner, id).await.unwrap(), bytes);
    let mut cursor = qa.files.cursor(owner, id).await.unwrap();
    let mut chunks = 0;
    while cursor.next_chunk().await.unwrap().is_some() {
        chunks += 1;
    }
    assert_eq!(chunks, 3, "1 MiB chunks");

    // Another customer's id is as unknown as a missing one.
    assert_eq!(qa.files.size(other, id).await.unwrap(), None);
    assert!(qa.files.read(other, id).await.is_err());
    qa.files.delete(other, &[id]).await.unwrap();
    assert_eq!(qa.files.read(owner, id).await.unwrap(), bytes);

    qa.files.delete(owner, &[id]).await.unwrap();
    assert_eq!(qa.files.size(owner, id).await.unwrap(), None);
    if app.backend == Backend::Sqlite {
        assert!(!app.data_path().join("files").join(id.to_string()).exists());
    }
    app.stop().await;
}

both_stores!(files_round_trip_and_stay_with_their_customer);
