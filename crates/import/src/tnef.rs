//! placeholder until the reader lands
#[derive(Debug)]
pub struct TnefFile { pub name: String, pub data: Vec<u8>, pub content_type: Option<String> }
#[derive(Debug, thiserror::Error)]
pub enum TnefError { #[error("not TNEF")] NotTnef }
pub fn read_attachments(_bytes: &[u8]) -> Result<Vec<TnefFile>, TnefError> { Err(TnefError::NotTnef) }
