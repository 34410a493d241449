//! JSON helpers: JSONL files and a plain HTTP GET.

use std::path::Path;

use serde_json::Value;

/// Reads the non-blank lines of a JSONL file as JSON values.
pub fn read_jsonl_values(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// A plain HTTP/1.0 POST of a JSON body on 127.0.0.1, returning the parsed JSON answer.
pub fn http_post_json(url: &str, body: &Value) -> Result<Value, String> {
    http_json(url, "POST", Some(body))
}

/// A plain HTTP/1.0 GET on 127.0.0.1, returning the parsed JSON body.
pub fn http_get_json(url: &str) -> Result<Value, String> {
    http_json(url, "GET", None)
}

fn http_json(url: &str, method: &str, body: Option<&Value>) -> Result<Value, String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut sock = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    write!(
        sock,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header end")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(head.lines().next().unwrap_or("").to_owned());
    }
    serde_json::from_slice(&raw[split + 4..]).map_err(|e| e.to_string())
}
