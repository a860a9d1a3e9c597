//! JSON-RPC parameter parsing from any request body: call objects, log filters, hashes,
//! addresses, quantities and tags are refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    appliance::rpc::fuzzing::parse_all(&v);
    if let Some(items) = v.as_array() {
        for item in items {
            appliance::rpc::fuzzing::parse_all(item);
        }
    }
    if let Some(o) = v.as_object() {
        for item in o.values() {
            appliance::rpc::fuzzing::parse_all(item);
        }
    }
});
