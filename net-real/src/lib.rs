//! std::net driver (issue 3).
