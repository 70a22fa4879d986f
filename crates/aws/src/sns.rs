//! "AIP stored" notices on SNS: the notice as the message, its storage space as the `space`
//! message attribute, so each subscriber filters on the spaces it wants.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use tokio::runtime::Handle;
use vellum_core::model::messages::AipStored;
use vellum_core::ports::{Notifier, PortError, PortResult};

use crate::errors::port_error;

pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
    rt: Handle,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: &str, rt: Handle) -> Self {
        Self { client, topic_arn: topic_arn.to_string(), rt }
    }

    /// A message for people (the monitor's report): a subject and plain text.
    pub fn publish_text(&self, subject: &str, text: &str) -> PortResult<()> {
        // SNS takes a subject of up to 100 characters.
        let subject: String = subject.chars().take(100).collect();
        self.rt
            .block_on(self.client.publish().topic_arn(&self.topic_arn).subject(subject).message(text).send())
            .map_err(|e| port_error("publishing the report", e))?;
        Ok(())
    }
}

impl Notifier for SnsNotifier {
    fn publish(&self, notice: &AipStored) -> PortResult<()> {
        let space = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&notice.space)
            .build()
            .map_err(|e| PortError::Refused(format!("the space attribute: {e}")))?;
        let message = serde_json::to_string(notice).expect("notices serialize");
        self.rt
            .block_on(
                self.client
                    .publish()
                    .topic_arn(&self.topic_arn)
                    .message(message)
                    .message_attributes("space", space)
                    .send(),
            )
            .map_err(|e| port_error(&format!("announcing AIP {}", notice.aip_uuid), e))?;
        Ok(())
    }
}
