//! Fixture crate (never compiled): every shape of `#[track_alloc]`.
use asmalloc::track_alloc;

mod net;

#[track_alloc(cache)]
pub fn fill_cache(n: usize) -> Vec<u8> {
    vec![0; n]
}

/// Not tracked.
pub fn plain() {}

pub struct Pool<T> {
    items: Vec<T>,
}

impl<T: Clone> Pool<T> {
    #[asmalloc::track_alloc(pool)]
    pub fn grow(&mut self, t: T) {
        self.items.push(t);
    }

    #[track_alloc(pool)]
    pub async fn grow_later(&mut self) {}

    #[::asmalloc::track_alloc(pool)]
    fn generic<U: Into<T>>(&mut self, u: U) {
        self.items.push(u.into());
    }
}

pub mod inline {
    pub trait Store {
        #[track_alloc(store)]
        fn put(&mut self, v: &[u8]) -> Vec<u8> {
            v.to_vec()
        }

        /// Required method: no body, not a site.
        #[track_alloc(store)]
        fn get(&self) -> Vec<u8>;
    }

    impl Store for super::Pool<u8> {
        #[track_alloc(store)]
        fn get(&self) -> Vec<u8> {
            self.items.clone()
        }
    }

    pub fn outer() {
        #[track_alloc(scratch)]
        fn nested() -> String {
            String::from("x")
        }
        let _ = nested();
    }
}

#[cfg_attr(feature = "x", track_alloc(ignored))]
pub fn not_tracked_by_cfg_attr() {}

#[track_alloc]
pub fn missing_type() {}
