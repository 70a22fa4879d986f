//! What operators and the dashboard do beside the flow of messages: who may use it
//! (`access`), the monitor's duties (`monitor`), a failed transfer tried again (`retry`), the
//! storage service's read side (`storage`) and the end-to-end test transfer.

pub mod access;
pub mod monitor;
pub mod retry;
pub mod storage;
pub mod test_transfer;
