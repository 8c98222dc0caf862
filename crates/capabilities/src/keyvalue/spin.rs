//! Spin's `fermyon:spin/key-value@2.0.0`: a store per label in `key_value_stores`, on the
//! same buckets as `wasi:keyvalue`.

use super::{Bucket, HasKv, KvError, KvView};
use wasmtime::component::{Linker, Resource};

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/spin-keyvalue",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::keyvalue::Bucket,
        },
        trappable_error_type: {
            "fermyon:spin/key-value.error" => crate::keyvalue::KvError,
        },
    });
}

use generated::fermyon::spin::key_value;

pub(super) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    key_value::add_to_linker::<_, HasKv>(linker, view)
}

impl key_value::Host for KvView<'_> {
    fn convert_error(&mut self, err: KvError) -> wasmtime::Result<key_value::Error> {
        Ok(match err {
            KvError::AccessDenied => key_value::Error::AccessDenied,
            KvError::Other(m) => key_value::Error::Other(m),
        })
    }
}

impl key_value::HostStore for KvView<'_> {
    async fn open(&mut self, label: String) -> Result<Resource<Bucket>, KvError> {
        self.open_bucket(&label)
    }

    bucket_methods!();

    async fn get_keys(&mut self, store: Resource<Bucket>) -> Result<Vec<String>, KvError> {
        self.all_keys(&store)
    }
}
