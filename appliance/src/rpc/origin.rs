//! Who may call this node's RPC from a browser: `Host` and `Origin` allow-lists, as geth and
//! reth keep them. A web page the operator opens can reach `ws://127.0.0.1:9500` (browsers do not
//! apply CORS to WebSocket) and, through DNS rebinding, plain HTTP too; both carry headers the
//! page cannot forge. Requests without an `Origin` (wallet back ends, curl, web3.py) pass.

use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The `Host` patterns allowed when `rpc.allowed_hosts` is empty: loopback names and the
/// address the server listens on, any port.
pub fn default_hosts(listen: std::net::SocketAddr) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost:*", "127.0.0.1:*", "[::1]:*"]
        .into_iter()
        .map(String::from)
        .collect();
    let own = match listen.ip() {
        std::net::IpAddr::V4(ip) => format!("{ip}:*"),
        std::net::IpAddr::V6(ip) => format!("[{ip}]:*"),
    };
    if !listen.ip().is_unspecified() && !hosts.contains(&own) {
        hosts.push(own);
    }
    hosts
}

/// Refuses requests whose `Origin` header is not listed (`*` allows every origin).
#[derive(Debug, Clone)]
pub struct OriginFilterLayer {
    allowed: Arc<Vec<String>>,
}

impl OriginFilterLayer {
    pub fn new(allowed: &[String]) -> Self {
        Self {
            allowed: Arc::new(
                allowed
                    .iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            ),
        }
    }

    /// Whether a request with this `Origin` header value may pass.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.allowed.iter().any(|a| a == "*" || *a == origin)
    }
}

impl<S> Layer<S> for OriginFilterLayer {
    type Service = OriginFilter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginFilter {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OriginFilter<S> {
    inner: S,
    layer: OriginFilterLayer,
}

impl<S, B> Service<HttpRequest<B>> for OriginFilter<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let refused = request
            .headers()
            .get("origin")
            .map(|o| o.to_str().map_or(true, |o| !self.layer.allows(o)));
        if refused == Some(true) {
            let response = HttpResponse::builder()
                .status(403)
                .header("content-type", "text/plain")
                .header(super::observe::REFUSED_BY, "origin")
                .body(HttpBody::from(
                    "origin not allowed: add it to rpc.allowed_origins in the node's config\n",
                ))
                .expect("static response");
            return Box::pin(async move { Ok(response) });
        }
        let call = self.inner.call(request);
        Box::pin(async move { call.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_and_star_allows_all() {
        let f = OriginFilterLayer::new(&["https://Explorer.example/".to_string()]);
        assert!(f.allows("https://explorer.example"));
        assert!(!f.allows("https://explorer.example.evil"));
        assert!(!f.allows("http://explorer.example"));
        assert!(!OriginFilterLayer::new(&[]).allows("http://localhost:3000"));
        assert!(OriginFilterLayer::new(&["*".into()]).allows("https://anything"));
    }

    #[test]
    fn default_hosts_add_the_listen_address() {
        let h = default_hosts("10.1.2.3:9500".parse().unwrap());
        assert!(h.contains(&"10.1.2.3:*".to_string()), "{h:?}");
        assert_eq!(default_hosts("127.0.0.1:9500".parse().unwrap()).len(), 3);
        assert_eq!(default_hosts("0.0.0.0:9500".parse().unwrap()).len(), 3);
    }
}
