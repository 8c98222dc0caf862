//! `wasi:keyvalue@0.2.0-draft2` (store, atomics with compare-and-swap, batch), the draft
//! Spin's SDKs import.

use super::{Bucket, HasKv, KvError, KvView};
use wasmtime::component::{Linker, Resource};

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/keyvalue-draft2",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store@0.2.0-draft2.bucket": crate::keyvalue::Bucket,
            "wasi:keyvalue/atomics@0.2.0-draft2.cas": crate::keyvalue::draft2::Cas,
        },
        trappable_error_type: {
            "wasi:keyvalue/store@0.2.0-draft2.error" => crate::keyvalue::KvError,
        },
    });
}

use generated::wasi::keyvalue0_2_0_draft2::{atomics, batch, store};

/// A compare-and-swap handle: the key and the value it held when the handle was made.
pub struct Cas {
    /// The bucket's key prefix (the handle may outlive the bucket's resource).
    prefix: String,
    key: String,
    current: Option<Vec<u8>>,
}

wasi_keyvalue_linking!();

impl store::HostBucket for KvView<'_> {
    bucket_methods!();

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, KvError> {
        let skip = match cursor {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| {
                KvError::Other(format!("cursor '{c}' is not one list-keys returned"))
            })?,
        };
        let (keys, more) = self.list(&bucket, skip)?;
        let cursor = more.then(|| (skip + keys.len()).to_string());
        Ok(store::KeyResponse { keys, cursor })
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Result<i64, KvError> {
        let range = (i64::MIN.into(), i64::MAX.into());
        let n = KvView::increment(self, &bucket, &key, delta.into(), range)?.await?;
        Ok(n as i64)
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        let swapped = match KvView::swap(
            self,
            &handle.prefix,
            &handle.key,
            handle.current.clone(),
            value,
        ) {
            Ok(commit) => commit.await,
            Err(e) => Err(e),
        };
        Ok(match swapped {
            Ok(true) => Ok(()),
            Ok(false) => {
                // The key moved on: a fresh handle on what it holds now, to retry with.
                let current = self.get_at(&handle.prefix, &handle.key).ok().flatten();
                let fresh = self.table.push(Cas { current, ..handle })?;
                Err(atomics::CasError::CasFailed(fresh))
            }
            Err(e) => Err(atomics::CasError::StoreError(store::Host::convert_error(
                self, e,
            )?)),
        })
    }
}

impl atomics::HostCas for KvView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Resource<Cas>, KvError> {
        let current = KvView::get(self, &bucket, &key)?;
        let prefix = self.prefix(&bucket)?;
        Ok(self.table.push(Cas {
            prefix,
            key,
            current,
        })?)
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.table.get(&cas)?.current.clone())
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, KvError> {
        KvView::get_many(self, &bucket, keys)
    }

    batch_writes!();
}
