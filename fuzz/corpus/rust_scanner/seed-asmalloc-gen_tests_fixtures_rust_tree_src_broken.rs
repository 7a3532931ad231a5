// Does not parse: a warning naming this file and line 4, the rest is scanned.
#[track_alloc(cache)]
fn fine() {}
fn broken( {
