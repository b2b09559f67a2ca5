//! Two replicas placeholder (being written).
