//! Proxy owns the listeners and the HTTP/TCP request path from accept to response.
