pub struct Buf(Vec<u8>);

impl Buf {
    #[track_alloc(r#type)]
    pub fn new() -> Buf {
        Buf(Vec::with_capacity(4096))
    }
}
