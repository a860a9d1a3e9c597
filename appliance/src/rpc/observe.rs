//! RPC metrics: calls by method and outcome with their latency (an RPC middleware), and
//! requests refused by the `Host`/`Origin` filters before any method ran (an HTTP layer).

use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpRequest, HttpResponse};
use jsonrpsee::types::Request;
use jsonrpsee::MethodResponse;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The header the origin filter puts on its refusals, so one counter tells them from the host
/// filter's (both answer 403).
pub const REFUSED_BY: &str = "x-harmony-refused";

/// Counts calls by method name; names the node does not serve count as `other`, so a client
/// cannot grow the label set.
#[derive(Clone)]
pub struct RpcMetrics<S> {
    service: S,
    counters: Arc<RpcCounters>,
}

/// What every call updates, shared by all connections: the method names served and the two
/// metric families (one `Arc` per call instead of a clone of the node's whole metric set).
pub struct RpcCounters {
    pub methods: HashSet<&'static str>,
    pub requests: prometheus::IntCounterVec,
    pub seconds: prometheus::HistogramVec,
}

impl<S> RpcMetrics<S> {
    pub fn new(service: S, counters: Arc<RpcCounters>) -> Self {
        Self { service, counters }
    }
}

fn label(methods: &HashSet<&'static str>, name: &str) -> &'static str {
    methods.get(name).copied().unwrap_or("other")
}

impl<S> RpcServiceT for RpcMetrics<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let method = label(&self.counters.methods, request.method_name());
        let (service, counters) = (self.service.clone(), self.counters.clone());
        async move {
            let started = Instant::now();
            let response = service.call(request).await;
            let status = if response.is_error() { "error" } else { "ok" };
            counters.requests.with_label_values(&[method, status]).inc();
            counters
                .seconds
                .with_label_values(&[method])
                .observe(started.elapsed().as_secs_f64());
            response
        }
    }

    /// Calls inside a batch are counted by method with status `batch` (the batch answers them
    /// together; their single outcomes are not separated here).
    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter() {
            if let Ok(BatchEntry::Call(req)) = entry {
                let method = label(&self.counters.methods, req.method_name());
                self.counters
                    .requests
                    .with_label_values(&[method, "batch"])
                    .inc();
            }
        }
        self.service.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}

/// Counts 403 answers of the filters inside it: `origin` when the origin filter marked the
/// answer, `host` otherwise (jsonrpsee's host filter).
#[derive(Clone)]
pub struct RefusalCountLayer {
    pub counter: prometheus::IntCounterVec,
}

impl<S> tower::Layer<S> for RefusalCountLayer {
    type Service = RefusalCount<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RefusalCount {
            inner,
            counter: self.counter.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RefusalCount<S> {
    inner: S,
    counter: prometheus::IntCounterVec,
}

impl<S, B> tower::Service<HttpRequest<B>> for RefusalCount<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
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
        let call = self.inner.call(request);
        let counter = self.counter.clone();
        Box::pin(async move {
            let response = call.await.map_err(Into::into)?;
            if response.status() == 403 {
                let reason = if response.headers().contains_key(REFUSED_BY) {
                    "origin"
                } else {
                    "host"
                };
                counter.with_label_values(&[reason]).inc();
            }
            Ok(response)
        })
    }
}
