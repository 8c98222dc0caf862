//! Spin 3's `spin:key-value/key-value@3.0.0`: the same stores as `fermyon:spin/key-value`,
//! with `async func`s (WASI 0.3 components import it). Reads run on the instance's thread;
//! writes are checked there and committed by the node's key-value writer, awaited; `get-keys`
//! streams keys the host listed (bounded as Spin 2's `get-keys` is).

use super::{Bucket, HasKv, KvError, KvView};
use wasmtime::component::{Accessor, FutureReader, Linker, Resource, StreamReader};

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/spin-keyvalue-async",
        imports: { default: trappable },
        with: {
            "spin:key-value/key-value.store": crate::keyvalue::Bucket,
        },
    });
}

use generated::spin::key_value::key_value::{self, Error};

pub(super) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    key_value::add_to_linker::<_, HasKv>(linker, view)
}

fn error(e: KvError) -> Error {
    match e {
        KvError::AccessDenied => Error::AccessDenied,
        KvError::Other(m) => Error::Other(m),
    }
}

/// Runs `f` on the instance's key-value view, its error as this interface words it.
fn on_view<T, R>(
    accessor: &Accessor<T, HasKv>,
    f: impl FnOnce(&mut KvView<'_>) -> Result<R, KvError>,
) -> wasmtime::Result<Result<R, Error>> {
    Ok(accessor
        .with(|mut access| f(&mut access.get()))
        .map_err(error))
}

/// Checks a write on the instance's key-value view with `f`, then awaits its commit (off the
/// view: other calls of the instance go on meanwhile).
async fn committed<T, R>(
    accessor: &Accessor<T, HasKv>,
    f: impl FnOnce(&mut KvView<'_>) -> Result<super::Commit<R>, KvError>,
) -> wasmtime::Result<Result<R, Error>> {
    let commit = match accessor.with(|mut access| f(&mut access.get())) {
        Ok(commit) => commit,
        Err(e) => return Ok(Err(error(e))),
    };
    Ok(commit.await.map_err(error))
}

impl key_value::Host for KvView<'_> {}

impl key_value::HostStore for KvView<'_> {
    fn drop(&mut self, store: Resource<Bucket>) -> wasmtime::Result<()> {
        self.close(store)
    }
}

impl<T> key_value::HostStoreWithStore<T> for HasKv {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        on_view(accessor, |kv| kv.open_bucket(&label))
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        on_view(accessor, |kv| KvView::get(kv, &store, &key))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        committed(accessor, |kv| KvView::set(kv, &store, &key, value)).await
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        committed(accessor, |kv| KvView::delete(kv, &store, &key)).await
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        on_view(accessor, |kv| KvView::exists(kv, &store, &key))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let listed = on_view(accessor, |kv| kv.all_keys(&store))?;
        let (keys, result) = match listed {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        };
        accessor.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let result =
                FutureReader::new(&mut access, async move { Ok::<_, wasmtime::Error>(result) })?;
            Ok((keys, result))
        })
    }
}
