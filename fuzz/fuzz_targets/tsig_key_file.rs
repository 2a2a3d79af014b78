//! A TSIG key file, read as the dynamic-update writer and `[[zone.keys]]` read them
//! (`TsigKey::parse_bind_keys`: BIND `key` statements as `tsig-keygen` and `rndc-confgen -a`
//! write them, other statements skipped, comments of the three kinds); each key read must make a
//! signer.

#![no_main]

use failover_dns::TsigKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match TsigKey::parse_bind_keys("fuzz.key", text) {
        Ok(keys) => {
            for key in keys {
                assert!(!key.name().is_empty(), "a key has a name");
                assert!(!key.secret().is_empty(), "a key has a secret");
                if let Err(error) = key.signer() {
                    panic!("key {key:?} was read but cannot sign: {error}");
                }
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
