//! One raw DNS query to one resolver, as a validating client sends it (RD, CD and the EDNS DO bit,
//! RFC 4035 section 3.2.1), over UDP with a retry over TCP when the answer is truncated. Used to
//! see what a resolver does to DNSSEC records before any validation happens.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use rand_core::{OsRng, RngCore};

/// EDNS payload size we offer (the DNS Flag Day 2020 value).
const PAYLOAD: u16 = 1232;

/// Asks `server` for `name`/`rtype` with DO set; the parsed answer or why there is none.
pub fn ask(
    server: SocketAddr,
    name: Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let query = query(name, rtype);
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let answer = over_udp(server, &bytes, timeout)?;
    let answer = if answer.metadata.truncation {
        over_tcp(server, &bytes, timeout)?
    } else {
        answer
    };
    if answer.metadata.id != query.metadata.id {
        return Err("the answer's ID does not match the query".into());
    }
    Ok(answer)
}

fn query(name: Name, rtype: RecordType) -> Message {
    let id = u16::try_from(OsRng.next_u32() & 0xffff).unwrap_or(0x0e0e);
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name, rtype));
    message.metadata.recursion_desired = true;
    message.metadata.checking_disabled = true;
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true).set_max_payload(PAYLOAD);
    message.set_edns(edns);
    message
}

fn over_udp(server: SocketAddr, query: &[u8], timeout: Duration) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| "bad local address".to_owned())?;
    let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    socket.connect(server).map_err(|e| e.to_string())?;
    socket.send(query).map_err(|e| e.to_string())?;
    let mut buf = vec![0; usize::from(u16::MAX)];
    let n = socket.recv(&mut buf).map_err(|e| no_answer(&e))?;
    Message::from_vec(buf.get(..n).unwrap_or_default())
        .map_err(|e| format!("unreadable answer: {e}"))
}

fn over_tcp(server: SocketAddr, query: &[u8], timeout: Duration) -> Result<Message, String> {
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(query.len()).map_err(|_| "query too long".to_owned())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).map_err(|e| no_answer(&e))?;
    let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).map_err(|e| no_answer(&e))?;
    Message::from_vec(&buf).map_err(|e| format!("unreadable answer: {e}"))
}

fn no_answer(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "no answer in time".into(),
        _ => e.to_string(),
    }
}
