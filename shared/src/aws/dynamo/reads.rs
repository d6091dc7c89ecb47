//! The analyzer's batch read: every trial, enrolment and vitals state of an
//! SQS batch in one strongly consistent BatchGetItem (100 keys per call).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::batch::{get_chunks, read_until_done, Backoff};
use super::submissions::patient_pk;
use super::trials::{enrolment_of, enrolment_sk, trial_pk};
use super::vitals::STATE_SK;
use super::{attr_str, from_record, s, DynamoStore, Item};
use crate::aws::errors::from_sdk;
use crate::ids::{PatientId, TrialId};
use crate::ports::StorageError;
use crate::ports::{BatchRead, BatchReader};

const OP: &str = "dynamodb.BatchGetItem(batch read)";

/// What an item of the read stands for.
#[derive(Debug, Clone)]
enum Wanted {
    Trial(TrialId),
    Enrolment(TrialId, PatientId),
    State(TrialId, PatientId),
}

/// The distinct keys of one batch read (DynamoDB refuses a request naming a
/// key twice) and what each one's item decodes into.
#[derive(Debug, Default)]
pub struct BatchKeys {
    keys: Vec<Item>,
    wanted: HashMap<(String, String), Wanted>,
}

impl BatchKeys {
    pub fn new(trials: &[&TrialId], patients: &[(&TrialId, &PatientId)]) -> Self {
        let mut keys = Self::default();
        for t in trials {
            keys.add(trial_pk(t), "META".to_owned(), Wanted::Trial((*t).clone()));
        }
        for (t, p) in patients {
            keys.add(trial_pk(t), enrolment_sk(p), Wanted::Enrolment((*t).clone(), (*p).clone()));
            keys.add(patient_pk(t, p), STATE_SK.to_owned(), Wanted::State((*t).clone(), (*p).clone()));
        }
        keys
    }

    fn add(&mut self, pk: String, sk: String, wanted: Wanted) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.wanted.entry((pk.clone(), sk.clone())) {
            e.insert(wanted);
            self.keys.push([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))].into());
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The request of one call: these keys, strongly consistent. An absence
    /// read here parks a record for good, and a state is written back under
    /// the version read here, so no replica lag may show through.
    pub fn request(keys: Vec<Item>) -> Result<KeysAndAttributes, StorageError> {
        KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|_| StorageError::Corrupt(format!("{OP}: request-build")))
    }

    /// The keys in BatchGetItem-sized chunks, in the order they were added.
    pub fn chunks(&self) -> Vec<Vec<Item>> {
        get_chunks(self.keys.clone())
    }

    /// Decodes the items read into the batch's records; a key without an item was not found.
    pub fn decode(&self, items: Vec<Item>) -> Result<BatchRead, StorageError> {
        let mut read = BatchRead::default();
        for item in items {
            let key = (attr_str(&item, "pk").unwrap_or_default().to_owned(), attr_str(&item, "sk").unwrap_or_default().to_owned());
            match self.wanted.get(&key) {
                Some(Wanted::Trial(t)) => {
                    read.trials.insert(t.clone(), from_record(OP, "trial", item)?);
                }
                Some(Wanted::Enrolment(t, p)) => {
                    read.enrolments.insert((t.clone(), p.clone()), enrolment_of(OP, item)?);
                }
                Some(Wanted::State(t, p)) => {
                    read.states.insert((t.clone(), p.clone()), from_record(OP, "vitals state", item)?);
                }
                None => return Err(StorageError::Corrupt(format!("{OP}: an item that was not asked for"))),
            }
        }
        Ok(read)
    }
}

impl DynamoStore {
    /// One BatchGetItem; returns the items found and the keys DynamoDB left unprocessed.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<(Vec<Item>, Vec<Item>), StorageError> {
        let out = self
            .client
            .batch_get_item()
            .request_items(self.table.clone(), BatchKeys::request(keys)?)
            .send()
            .await
            .map_err(|e| from_sdk(OP, &e))?;
        let items = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
        let unprocessed = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
        Ok((items, unprocessed))
    }
}

#[async_trait]
impl BatchReader for DynamoStore {
    /// ceil(keys/100) BatchGetItem calls, sent concurrently.
    async fn read_batch(&self, trials: &[&TrialId], patients: &[(&TrialId, &PatientId)]) -> Result<BatchRead, StorageError> {
        let keys = BatchKeys::new(trials, patients);
        let reads = keys.chunks().into_iter().map(|chunk| read_until_done(chunk, Backoff::default(), |k| self.batch_get(k)));
        let items: Vec<Item> = futures::future::try_join_all(reads).await?.into_iter().flatten().collect();
        keys.decode(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_asked_once_and_consistently() {
        // GIVEN a trial asked twice and a patient listed twice
        let (t, p) = (TrialId::parse("t1").unwrap(), PatientId::parse("P1").unwrap());
        let keys = BatchKeys::new(&[&t, &t], &[(&t, &p), (&t, &p)]);
        // THEN three keys: the trial, the enrolment, the state
        assert_eq!(keys.len(), 3);
        // AND the request reads strongly consistent
        let request = BatchKeys::request(keys.chunks().remove(0)).unwrap();
        assert_eq!(request.consistent_read(), Some(true));
        assert_eq!(request.keys().len(), 3);
    }

    #[test]
    fn an_item_nobody_asked_for_is_refused() {
        let keys = BatchKeys::new(&[], &[]);
        let item: Item = [("pk".to_owned(), s("TRIAL#x")), ("sk".to_owned(), s("META"))].into();
        assert!(keys.decode(vec![item]).is_err());
    }
}
