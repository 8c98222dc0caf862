//! `wasi:keyvalue@0.2.0-draft` (store, atomics, batch), as wasmtime's own implementation
//! defines it.

use super::{Bucket, HasKv, KvError, KvView};
use wasmtime::component::{Linker, Resource};

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/keyvalue",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store@0.2.0-draft.bucket": crate::keyvalue::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store@0.2.0-draft.error" => crate::keyvalue::KvError,
        },
    });
}

use generated::wasi::keyvalue0_2_0_draft::{atomics, batch, store};

wasi_keyvalue_linking!();

impl store::HostBucket for KvView<'_> {
    bucket_methods!();

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, KvError> {
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let (keys, more) = self.list(&bucket, skip)?;
        let cursor = more.then(|| (skip + keys.len()) as u64);
        Ok(store::KeyResponse { keys, cursor })
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, KvError> {
        let n = KvView::increment(self, &bucket, &key, delta.into(), (0, u64::MAX.into()))?.await?;
        Ok(n as u64)
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        let found = KvView::get_many(self, &bucket, keys)?;
        Ok(found.into_iter().map(|(k, v)| v.map(|v| (k, v))).collect())
    }

    batch_writes!();
}
