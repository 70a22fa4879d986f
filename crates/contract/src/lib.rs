//! The contract every adapter of a port keeps. Each check is a function over the port's
//! trait; an adapter crate runs them all with the `*_contract!` macros, handing in a factory
//! for a fresh, empty adapter. The embedded adapters run them, and the AWS adapters run the
//! same checks against an emulator. The state store's checks are grouped by its roles;
//! `faults` is the one fault injector for every port, which the chaos tests drive and the
//! state store's contract runs every adapter under.

pub mod access_store;
pub mod faults;
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
                compose_joins_parts,
                compose_joins_many_parts_in_order,
                compose_within_goes_on_where_it_stopped
            ]
        );
    };
}

/// Generates the state store's checks, a module per role (`transfer_register`,
/// `transfer_oversight`, `job_ledger`, `file_catalogue`, `event_log`) and one for the whole
/// store under the fault injector (`under_faults`); `$make` builds a fresh, empty store.
#[macro_export]
macro_rules! state_store_contract {
    ($make:expr) => {
        mod transfer_register {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!(
                state_store,
                $make,
                [
                    create_transfer_is_idempotent,
                    first_ending_stands,
                    files_not_scanned_are_recorded,
                    aip_versions,
                    racing_create_transfer,
                    racing_assign_aip_version
                ]
            );
        }
        mod transfer_oversight {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!(
                state_store,
                $make,
                [
                    transfers_are_listed_newest_first,
                    transfers_are_found_by_sip_hidden_and_searched,
                    a_failed_transfer_reopens_once
                ]
            );
        }
        mod job_ledger {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!(
                state_store,
                $make,
                [
                    jobs_are_started_once,
                    job_checkpoints_are_compare_and_swap,
                    tasks_are_found_by_id,
                    racing_job_checkpoint
                ]
            );
        }
        mod file_catalogue {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!(
                state_store,
                $make,
                [
                    extraction_checkpoints,
                    planned_extraction,
                    record_batch_fans_in_once,
                    reads_are_paged,
                    large_batches_commit_whole,
                    racing_record_batch,
                    racing_commit_extract_batch,
                    a_made_file_joins_its_batch_and_keeps_its_source
                ]
            );
        }
        mod event_log {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!(state_store, $make, [events_are_written_once]);
        }
        mod under_faults {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!(state_store, $make, [writes_whose_answers_are_lost_are_repeated_safely]);
        }
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
