trait Store {
    #[asmalloc::track_alloc(store)]
    fn put(&mut self);
}

fn main() {}
