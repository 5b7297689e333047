//! Upstream owns clusters at runtime: endpoints, load balancing, connection pools, outlier detection.
