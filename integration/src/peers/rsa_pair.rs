//! A charon and a pluto that authenticate each other with raw RSA keys in transport mode: charon
//! holds the RSA-2048 test key and expects RSA-3072, pluto the reverse. Used where the two real
//! peers only need to talk to each other (the test bed's own checks, the fuzz seeds' captures).

use super::{CharonSetup, PlutoSetup, CKAID};
use crate::{keys_dir, test_key_ipseckey};

/// A committed test key's text (`integration/keys`).
fn key(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(name))
        .unwrap_or_else(|e| panic!("test key {name}: {e}"))
}

/// charon at `local` with raw RSA-2048 keys, expecting `remote` to authenticate with RSA-3072.
pub fn charon_rsa_transport(local: &str, remote: &str) -> CharonSetup {
    CharonSetup {
        swanctl_conf: format!(
            "connections {{ peer {{ version = 2\n mobike = no\n local_addrs = {local}\n remote_addrs = {remote}\n\
             proposals = aes256gcm16-prfsha256-x25519\n\
             local {{ auth = pubkey\n id = {local}\n pubkeys = self.pub }}\n\
             remote {{ auth = pubkey\n id = {remote}\n pubkeys = peer.pub }}\n\
             children {{ t {{ mode = transport\n esp_proposals = aes128gcm16 }} }} }} }}\n"
        ),
        private_keys: vec![("self.pem".into(), key("host-rsa2048.pem"))],
        public_keys: vec![
            ("self.pub".into(), key("host-rsa2048.pub.pem")),
            ("peer.pub".into(), key("host-rsa3072.pub.pem")),
        ],
        ..CharonSetup::default()
    }
}

/// pluto at `local` with the RSA-3072 key, expecting `remote` to sign with RSA-2048.
pub fn pluto_rsa_transport(local: &str, remote: &str) -> PlutoSetup {
    PlutoSetup {
        conns: format!(
            "conn peer\n    authby=rsasig\n    type=transport\n    left={local}\n    leftid={local}\n    \
             leftckaid={CKAID}\n    right={remote}\n    rightid={remote}\n    rightrsasigkey=0s{rsa}\n    \
             ike=aes_gcm256-sha2_256;dh31\n    esp=aes_gcm128-null\n    leftupdown=%disabled\n    auto=add\n",
            rsa = test_key_ipseckey("host-rsa2048"),
        ),
        rsa_key_pem: Some(key("host-rsa3072.pem")),
        ..PlutoSetup::default()
    }
}
