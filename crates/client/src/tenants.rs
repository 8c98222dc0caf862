//! Namespaces and access tokens.

use crate::{Client, ClientError};
use shoal_api::{ApplyResponse, CreatedToken, Namespace, TokenInfo, TokenRequest, TokenRole};

impl Client {
    /// Every namespace the token sees.
    pub async fn list_namespaces(&self) -> Result<Vec<Namespace>, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/v1/namespaces"))
            .await
    }

    /// One namespace, with what its objects use (`status`).
    pub async fn get_namespace(&self, name: &str) -> Result<Namespace, ClientError> {
        self.json(self.request(reqwest::Method::GET, &format!("/v1/namespaces/{name}")))
            .await
    }

    /// Creates, updates or confirms a namespace.
    pub async fn apply_namespace(
        &self,
        ns: &Namespace,
    ) -> Result<ApplyResponse<Namespace>, ClientError> {
        let path = format!("/v1/namespaces/{}", ns.metadata.name);
        self.json(self.request(reqwest::Method::PUT, &path).json(ns))
            .await
    }

    /// Deletes a namespace and everything in it.
    pub async fn delete_namespace(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/v1/namespaces/{name}");
        self.send(self.request(reqwest::Method::DELETE, &path))
            .await?;
        Ok(())
    }

    /// Every access token (never their secrets).
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/v1/tokens"))
            .await
    }

    /// A new access token for `role` (in `namespace`, for `view` and `edit`).
    pub async fn create_token(
        &self,
        role: TokenRole,
        namespace: Option<&str>,
    ) -> Result<CreatedToken, ClientError> {
        let body = TokenRequest {
            namespace: namespace.map(str::to_string),
            role,
        };
        self.json(
            self.request(reqwest::Method::POST, "/v1/tokens")
                .json(&body),
        )
        .await
    }

    /// Deletes access token `id`.
    pub async fn delete_token(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/v1/tokens/{id}");
        self.send(self.request(reqwest::Method::DELETE, &path))
            .await?;
        Ok(())
    }
}
