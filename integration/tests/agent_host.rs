//! `oe run` on this machine's own kernel, which has XFRM but no ESP: the agent says so plainly, installs no
//! trap (nothing can be held or dropped), keeps serving status and lookups, answers malformed status requests
//! with errors without being disturbed, reloads on SIGHUP, and exits cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use oe_integration::agent::Agent;
use oe_integration::netns::Netns;
use oe_integration::process::wait_until;

fn raw(agent: &Agent, bytes: &[u8]) -> String {
    let mut stream = UnixStream::connect(agent.socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line
}

fn host_kernel_has_no_esp() -> bool {
    let ns = Netns::new("probe");
    let out = ns
        .cmd("ip")
        .args([
            "xfrm",
            "state",
            "add",
            "src",
            "192.0.2.1",
            "dst",
            "192.0.2.2",
            "proto",
            "esp",
            "spi",
            "0x100",
            "mode",
            "transport",
            "aead",
            "rfc4106(gcm(aes))",
            "0x0102030405060708090a0b0c0d0e0f1011121314",
            "128",
        ])
        .output()
        .unwrap();
    !out.status.success()
}

#[test]
fn degraded_on_a_kernel_without_esp_but_serving() {
    oe_integration::require::netns();
    let no_esp = host_kernel_has_no_esp();
    let ns = Netns::new("host-oe");
    let config = "[identity]\nkey = \"@DIR@/none.pem\"\n[groups]\nprivate-or-clear = [\"0.0.0.0/0\"]\n[trigger]\nenabled = false\n[dns]\nupstreams = [\"127.0.0.1\"]\n";
    let mut agent = Agent::start(&ns, config);
    let status = agent.request(r#"{"command":"status"}"#);
    let policies = String::from_utf8_lossy(&ns.sh("ip xfrm policy").stdout).into_owned();
    let explain = agent.request(r#"{"command":"explain","host":"203.0.113.7"}"#);
    let verdict = explain["result"]["addresses"][0]["verdict"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = agent.cli(&["status"]);
    assert!(out.status.success(), "{out:?}");
    if no_esp {
        assert_eq!(status["result"]["state"], "degraded", "{status}");
        assert_eq!(status["result"]["kernel"]["esp"], false);
        assert_eq!(status["result"]["traps_installed"], false);
        assert!(
            status["result"]["degraded_reason"]
                .as_str()
                .unwrap()
                .contains("ESP"),
            "{status}"
        );
        assert!(
            !policies.contains("tmpl"),
            "no trap may be installed without ESP: {policies}"
        );
        assert!(verdict.contains("cannot install ESP"), "{explain}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("degraded"),
            "{out:?}"
        );
    } else {
        // A kernel with ESP: the normal state (the degraded path is then covered by the probe's own tests).
        assert_eq!(status["result"]["state"], "running", "{status}");
        assert!(policies.contains("tmpl"), "traps installed: {policies}");
    }

    // Malformed requests: an error answer each, and the agent keeps serving.
    for junk in [
        &b"not json\n"[..],
        b"{\"command\":\"reboot\"}\n",
        b"[1,2,3]\n",
        &[0xff, 0xfe, b'\n'],
    ] {
        let answer = raw(&agent, junk);
        assert!(
            answer.contains("\"ok\":false") && answer.contains("bad-request"),
            "{junk:?} -> {answer}"
        );
    }
    let mut huge = vec![b'x'; 100_000];
    huge.push(b'\n');
    assert!(raw(&agent, &huge).contains("too-long"));
    assert_eq!(agent.request(r#"{"command":"status"}"#)["ok"], true);

    // SIGHUP: the configuration file is read again.
    let path = agent.dir().join("oe.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "private-or-clear = [\"0.0.0.0/0\"]",
        "private-or-clear = [\"0.0.0.0/0\"]\nblock = [\"203.0.113.0/24\"]",
    );
    std::fs::write(&path, text).unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let reloaded = wait_until(Duration::from_secs(10), || {
        agent.request(r#"{"command":"explain","host":"203.0.113.7"}"#)["result"]["addresses"][0]
            ["group"]
            == "block"
    });
    assert!(reloaded, "reload applied:\n{}", agent.log());

    assert!(
        agent.stop().is_some_and(|s| s.success()),
        "clean exit on SIGTERM:\n{}",
        agent.log()
    );
}
