//! Staging: encoded files stream to S3 as multipart uploads, one object per file, under
//! `prefix/process-id/`.
//!
//! An upload holds at most the part it is sending: the caller hands over each part as a `Bytes`
//! split off its encoding buffer (no copy), and a file smaller than one part is written with a
//! single `PutObject`.

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use uuid::Uuid;

use crate::config::S3Config;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// S3's smallest part (all parts but the last must be at least this big).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// A client for the staging area.
#[derive(Clone)]
pub struct Stager {
    client: Client,
    bucket: String,
    prefix: String,
    retry: RetryPolicy,
}

impl fmt::Debug for Stager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stager")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Turns an AWS SDK error into ours, with the operation and key and the service's own words (no
/// credentials: the SDK's errors carry none).
fn s3_error<E>(op: &'static str, key: &str, err: aws_sdk_s3::error::SdkError<E>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
    let transient = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            status >= 500 || status == 429
        }
        _ => false,
    };
    Error::S3 {
        operation: op,
        key: key.to_owned(),
        message: redact_urls(&DisplayErrorContext(&err).to_string()),
        transient,
    }
}

impl Stager {
    /// Connects to the staging area described by `config` (no request is sent yet).
    pub async fn new(config: &S3Config) -> Result<Self> {
        if config.bucket.is_empty() {
            return Err(Error::Config(
                "the S3 bucket is empty; set it with S3Config::new(bucket)".into(),
            ));
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(
                id.clone(),
                secret.expose().to_owned(),
                config.session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "relyt-sdk",
            ));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            // CRC checksums on every part cost CPU and are checked by TLS and by S3's own MD5 of
            // the content length anyway; send them only where S3 requires them.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        if shared.region().is_none() && config.region.is_none() {
            builder = builder.region(Region::new("us-east-1"));
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            retry: RetryPolicy::default(),
        })
    }

    /// Retries transient S3 failures (network, timeouts, 5xx, throttling) with `policy`, on top
    /// of the AWS SDK's own few quick retries.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key of a process's `n`th file: `prefix/process-id/000000000n.csv`.
    pub fn object_key(&self, process_id: Uuid, n: u64) -> String {
        if self.prefix.is_empty() {
            format!("{process_id}/{n:010}.csv")
        } else {
            format!("{}/{process_id}/{n:010}.csv", self.prefix)
        }
    }

    /// Writes a whole object in one request.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<StagedObject> {
        let size = data.len() as u64;
        self.retry
            .run("PutObject", |_| async {
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type("text/csv")
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map_err(|e| s3_error("PutObject", key, e))
            })
            .await?;
        Ok(StagedObject {
            key: key.to_owned(),
            size,
        })
    }

    /// Starts a multipart upload of `key`.
    pub async fn start_upload(&self, key: &str) -> Result<MultipartUpload> {
        let out = self
            .retry
            .run("CreateMultipartUpload", |_| async {
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type("text/csv")
                    .send()
                    .await
                    .map_err(|e| s3_error("CreateMultipartUpload", key, e))
            })
            .await?;
        let upload_id = out.upload_id().ok_or_else(|| Error::S3 {
            operation: "CreateMultipartUpload",
            key: key.to_owned(),
            message: "the response has no upload id".into(),
            transient: false,
        })?;
        Ok(MultipartUpload {
            stager: self.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            parts: Vec::new(),
            size: 0,
        })
    }

    /// A URL that lets its holder (the database server) GET `key` until it expires.
    pub async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<PresignedUrl> {
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| Error::Config(format!("presigned URL lifetime {expires_in:?}: {e}")))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| s3_error("presign GetObject", key, e))?;
        Ok(PresignedUrl(req.uri().to_owned()))
    }

    /// Streams an object's bytes (for the client-side COPY).
    pub async fn get(&self, key: &str) -> Result<ByteStream> {
        let out = self
            .retry
            .run("GetObject", |_| async {
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| s3_error("GetObject", key, e))
            })
            .await?;
        Ok(out.body)
    }

    /// Deletes an object.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.retry
            .run("DeleteObject", |_| async {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| s3_error("DeleteObject", key, e))
            })
            .await?;
        Ok(())
    }
}

/// A multipart upload in progress. Finish it with [`complete`](Self::complete) or
/// [`abort`](Self::abort); dropped, it leaves an incomplete upload for the bucket's lifecycle rules.
#[must_use = "a multipart upload must be completed or aborted"]
#[derive(Debug)]
pub struct MultipartUpload {
    stager: Stager,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
    size: u64,
}

impl MultipartUpload {
    /// The object key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Bytes sent so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Sends the next part. Every part but the last must be at least [`MIN_PART_SIZE`] bytes.
    pub async fn put_part(&mut self, data: Bytes) -> Result<()> {
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        if number > 10_000 {
            return Err(Error::Config(format!(
                "file {} would need more than 10000 parts; raise part_size or lower the file's \
                 byte cap",
                self.key
            )));
        }
        let len = data.len() as u64;
        let (stager, key, upload_id) = (&self.stager, &self.key, &self.upload_id);
        let out = stager
            .retry
            .run("UploadPart", |_| async {
                stager
                    .client
                    .upload_part()
                    .bucket(&stager.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map_err(|e| s3_error("UploadPart", key, e))
            })
            .await?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        self.size += len;
        Ok(())
    }

    /// Completes the upload: the object becomes visible.
    pub async fn complete(self) -> Result<StagedObject> {
        let (stager, key, upload_id, parts) =
            (&self.stager, &self.key, &self.upload_id, &self.parts);
        stager
            .retry
            .run("CompleteMultipartUpload", |_| async {
                stager
                    .client
                    .complete_multipart_upload()
                    .bucket(&stager.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts.clone()))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| s3_error("CompleteMultipartUpload", key, e))
            })
            .await?;
        Ok(StagedObject {
            key: self.key,
            size: self.size,
        })
    }

    /// Abandons the upload and frees its parts.
    pub async fn abort(self) -> Result<()> {
        self.stager
            .client
            .abort_multipart_upload()
            .bucket(&self.stager.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|e| s3_error("AbortMultipartUpload", &self.key, e))?;
        Ok(())
    }
}

/// A complete object in the staging area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedObject {
    /// The object key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A presigned GET URL. It is a bearer credential: `Debug` and `Display` show it without its query
/// string (signature, credential, expiry).
#[derive(Clone, PartialEq, Eq)]
pub struct PresignedUrl(String);

impl PresignedUrl {
    /// The full URL, to hand to the database server. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without its query string.
    pub fn redacted(&self) -> String {
        let base = self.0.split('?').next().unwrap_or_default();
        format!("{base}?<signature redacted>")
    }
}

impl fmt::Debug for PresignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresignedUrl({})", self.redacted())
    }
}

impl fmt::Display for PresignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Removes presigned-URL query strings (signatures, credentials) from text such as a database
/// error that echoes a `curl` command line.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("X-Amz-") {
        // Cut from the `?` that opens the signed query string to the end of the URL.
        let cut = rest[..start]
            .rfind('?')
            .filter(|&q| !rest[q..start].contains(char::is_whitespace))
            .unwrap_or(start);
        out.push_str(&rest[..cut]);
        out.push_str("?<signature redacted>");
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        let url = "http://h:1/b/k.csv?x-id=GetObject&X-Amz-Algorithm=AWS4&X-Amz-Credential=AK%2F1\
                   &X-Amz-Signature=abcdef";
        let msg = format!("program \"curl -sfS '{url}'\" failed");
        let red = redact_urls(&msg);
        assert_eq!(
            red,
            "program \"curl -sfS 'http://h:1/b/k.csv?<signature redacted>'\" failed"
        );
        assert!(!red.contains("abcdef") && !red.contains("AK%2F1"));
        let p = PresignedUrl(url.to_owned());
        assert!(!format!("{p:?} {p}").contains("abcdef"));
    }
}
