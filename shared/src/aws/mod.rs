//! AWS adapters of the ports. ADAPTERS: to be written.
