//! The contract every adapter of a port keeps. Each check is a function over the port's
//! trait; an adapter crate runs them all with the `*_contract!` macros, handing in a factory
//! for a fresh, empty adapter. The embedded adapters run them today; the AWS adapters run
//! the same checks against an emulator.

pub mod access_store;
pub mod object_store;
pub mod queue;
pub mod state_store;

/// Generates one `#[test]` per object-store check; `$make` builds a fresh, empty store.
#[macro_export]
macro_rules! object_store_contract {
    ($make:expr) => {
        $crate::contract_tests!(
            object_store,
            $make,
            [
                round_trip,
                missing_objects,
                ranged_reads,
                uncommitted_writes_are_invisible,
                list_by_prefix,
                tags,
                delete,
                delete_prefix,
                awkward_keys,
                large_objects_stream_in_parts,
                compose_joins_parts
            ]
        );
    };
}

/// Generates one `#[test]` per state-store check; `$make` builds a fresh, empty store.
#[macro_export]
macro_rules! state_store_contract {
    ($make:expr) => {
        $crate::contract_tests!(
            state_store,
            $make,
            [
                create_transfer_is_idempotent,
                first_ending_stands,
                files_not_scanned_are_recorded,
                jobs_are_started_once,
                extraction_checkpoints,
                record_batch_fans_in_once,
                events_are_written_once,
                aip_versions,
                job_checkpoints_are_compare_and_swap,
                reads_are_paged,
                transfers_are_listed_newest_first,
                large_batches_commit_whole,
                racing_create_transfer,
                racing_record_batch,
                racing_commit_extract_batch,
                racing_job_checkpoint,
                racing_assign_aip_version,
                transfers_are_found_by_sip_hidden_and_searched,
                tasks_are_found_by_id,
                a_failed_transfer_reopens_once
            ]
        );
    };
}

/// Generates one `#[test]` per queue check; `$make` takes `max_receives` and builds a
/// fresh, empty queue.
#[macro_export]
macro_rules! queue_contract {
    ($make:expr) => {
        $crate::contract_tests!(
            queue,
            $make,
            [
                send_receive_ack,
                leases_hide_messages,
                nack_returns_with_delay,
                extend_keeps_a_lease,
                dead_letters_after_max_receives,
                stale_receipts_are_ignored,
                dead_letters_are_redriven
            ]
        );
    };
}

/// Generates one `#[test]` per access-store check; `$make` builds a fresh, empty store.
#[macro_export]
macro_rules! access_store_contract {
    ($make:expr) => {
        $crate::contract_tests!(
            access_store,
            $make,
            [
                users_are_added_once_and_listed_by_name,
                keys_are_found_by_digest_and_revoked_by_id,
                sessions_are_found_and_removed,
                removing_a_user_takes_their_keys_and_sessions
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! contract_tests {
    ($module:ident, $make:expr, [$($check:ident),* $(,)?]) => {
        $(
            #[test]
            fn $check() {
                $crate::$module::$check(&$make);
            }
        )*
    };
}
