//! The configuration, as data: the organization and the processing profiles an upload's
//! prefix chooses (`profile`), and the format policy rules for outside tools (`fpr`), and the knobs of one run (`settings`).

pub mod fpr;
pub mod profile;
pub mod settings;

pub use settings::Settings;
