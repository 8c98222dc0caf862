//! Answering a request with an app: what a request routed at the ingress, a call between
//! apps in memory and a call forwarded from another node all come to — the app's metrics,
//! its server span, and the limit on its response body.

use http_body_util::BodyExt;
use shoal_runtime::{HttpApp, ResponseBody};

/// Serves `req` with `app` under its server `span`, counted in the app's metrics, its
/// response body cut at `max_response_body`: what a request routed here and an in-memory
/// call from another app (`crate::calls`) both come to.
pub(crate) async fn answer<B>(
    app: &HttpApp,
    req: hyper::Request<B>,
    mut span: shoal_trace::Span,
    max_response_body: u64,
) -> http::Response<shoal_runtime::Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<shoal_runtime::HttpError>,
{
    let mut request = app.metrics().request();
    let response = app.handle(req).await;
    let status = response.status();
    request.answered(status.as_u16());
    if span.is_recording() {
        span.set("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.fail(&status.to_string());
        }
    }
    response.map(|body| ResponseBody::new(body, max_response_body, request, span).boxed_unsync())
}

/// The server span of a request for app `app` (`app/NAME`), under the caller's `traceparent`
/// if it sent a valid one; the request then carries the span on, in its extensions (for the
/// runtime) and as its `traceparent` (for the guest, and the node a request is forwarded
/// to). Nothing at all while tracing is off.
pub(crate) fn server_span<B>(req: &mut hyper::Request<B>, app: &str) -> shoal_trace::Span {
    use shoal_trace::TRACEPARENT;
    let tracer = shoal_trace::tracer();
    if !tracer.is_on() {
        return shoal_trace::Span::none();
    }
    let parent = req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok());
    let method = req.method().as_str();
    let mut span = tracer.start_under(
        &format!("{method} {app}"),
        shoal_trace::SpanKind::Server,
        parent,
    );
    span.set("http.request.method", method);
    span.set("url.path", req.uri().path());
    span.set("shoal.app", app);
    if let Some(ctx) = span.context() {
        req.extensions_mut().insert(ctx);
        if let Ok(v) = http::HeaderValue::try_from(ctx.traceparent()) {
            req.headers_mut().insert(TRACEPARENT, v);
        }
    }
    span
}
