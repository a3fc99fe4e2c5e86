//! Template registry: namespaces (each with its PGMQ queue) and versioned templates.
//! Several versions of one `(namespace, name)` coexist; "latest" is semver precedence.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tasker_templates::{InputValidator, TaskTemplate};

use crate::{Engine, EngineError};

/// A registered template with its compiled input validator.
pub struct RegisteredTemplate {
    pub template: TaskTemplate,
    pub validator: InputValidator,
    pub content_hash: String,
}

/// One row of `GET /v1/templates`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TemplateSummary {
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[schema(required)]
    pub description: Option<String>,
    pub steps: Vec<String>,
    pub registered_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) enum Lookup {
    Found(Arc<RegisteredTemplate>),
    /// The first of `/namespace`, `/name`, `/version` that matched nothing.
    Missing(&'static str),
}

fn content_hash(definition: &serde_json::Value) -> String {
    hex(&Sha256::digest(definition.to_string().as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Engine {
    /// Registers (or updates in place) one template version and makes sure its namespace and
    /// queue exist. Callers apply `environments.<env>` overrides first.
    pub async fn register_template(&self, template: &TaskTemplate) -> Result<(), EngineError> {
        let definition = serde_json::to_value(template)
            .map_err(|e| EngineError::Invalid(format!("template not serialisable: {e}")))?;
        let hash = content_hash(&definition);
        let ns = &template.namespace_name;
        let mut tx = self.pool.begin().await?;
        // Serialise queue creation per namespace across processes.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tasker_ns:' || $1))")
            .bind(ns)
            .execute(&mut *tx)
            .await?;
        let created =
            sqlx::query("INSERT INTO tasker_namespaces (name, queue_name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(ns)
                .bind(tasker_store::queue_name(ns))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if created == 1 {
            sqlx::query("SELECT pgmq.create($1)")
                .bind(tasker_store::queue_name(ns))
                .execute(&mut *tx)
                .await?;
            // Vacuum leaves a queue's empty end pages in place (see [`Engine::vacuum_queues`]).
            sqlx::query(&format!(
                "ALTER TABLE {} SET (vacuum_truncate = false)",
                tasker_store::queue_table(ns)
            ))
            .execute(&mut *tx)
            .await?;
        }
        let v = &template.version;
        sqlx::query(
            "INSERT INTO tasker_templates
               (namespace, name, version, version_major, version_minor, version_patch, definition, content_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (namespace, name, version) DO UPDATE
               SET definition = EXCLUDED.definition, content_hash = EXCLUDED.content_hash, updated_at = now()
               WHERE tasker_templates.content_hash <> EXCLUDED.content_hash",
        )
        .bind(ns)
        .bind(&template.name)
        .bind(v.to_string())
        .bind(v.major as i64)
        .bind(v.minor as i64)
        .bind(v.patch as i64)
        .bind(&definition)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.forget_template(ns, &template.name);
        Ok(())
    }

    /// Finds a template; `version: None` means the highest registered version.
    pub(crate) async fn lookup_template(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Lookup, EngineError> {
        let row = sqlx::query(
            "SELECT version, definition, content_hash FROM tasker_templates
              WHERE namespace = $1 AND name = $2 AND ($3::text IS NULL OR version = $3)
              ORDER BY version_major DESC, version_minor DESC, version_patch DESC LIMIT 1",
        )
        .bind(namespace)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            let ns_known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker_templates WHERE namespace = $1)")
                    .bind(namespace)
                    .fetch_one(&self.pool)
                    .await?;
            if !ns_known {
                return Ok(Lookup::Missing("/namespace"));
            }
            let name_known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker_templates WHERE namespace = $1 AND name = $2)")
                    .bind(namespace)
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await?;
            return Ok(Lookup::Missing(if name_known { "/version" } else { "/name" }));
        };
        let found_version: String = row.try_get("version")?;
        let hash: String = row.try_get("content_hash")?;
        let key = (namespace.to_string(), name.to_string(), found_version);
        let remember_latest = |cache: &mut crate::TemplateCache| {
            if version.is_none() {
                cache.latest.insert((key.0.clone(), key.1.clone()), key.2.clone());
            }
        };
        {
            let mut cache = self.templates.lock().expect("template cache");
            if let Some(hit) = cache.compiled.get(&key).filter(|hit| hit.content_hash == hash).cloned() {
                remember_latest(&mut cache);
                return Ok(Lookup::Found(hit));
            }
        }
        let definition: serde_json::Value = row.try_get("definition")?;
        let template: TaskTemplate = serde_json::from_value(definition)
            .map_err(|e| EngineError::Corrupt(format!("template {}/{}: {e}", key.0, key.1)))?;
        let validator = template
            .compile_input_schema()
            .map_err(|e| EngineError::Corrupt(format!("template {}: {e}", template.identity())))?;
        let entry = Arc::new(RegisteredTemplate {
            template,
            validator,
            content_hash: hash,
        });
        let mut cache = self.templates.lock().expect("template cache");
        remember_latest(&mut cache);
        cache.compiled.insert(key.clone(), entry.clone());
        Ok(Lookup::Found(entry))
    }

    /// The template a creation names, from this process's cache, without reading the
    /// database: what a lookup last found for it. The creation's statement checks that it is
    /// still current (same content, and no higher version when none was named).
    pub(crate) fn cached_template(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Option<Arc<RegisteredTemplate>> {
        let cache = self.templates.lock().expect("template cache");
        let (namespace, name) = (namespace.to_string(), name.to_string());
        let version = match version {
            Some(v) => v.to_string(),
            None => cache.latest.get(&(namespace.clone(), name.clone()))?.clone(),
        };
        cache.compiled.get(&(namespace, name, version)).cloned()
    }

    /// Drops what the cache holds of (namespace, name): the next creation looks it up.
    pub(crate) fn forget_template(&self, namespace: &str, name: &str) {
        let mut cache = self.templates.lock().expect("template cache");
        cache.latest.remove(&(namespace.to_string(), name.to_string()));
        cache.compiled.retain(|k, _| !(k.0 == namespace && k.1 == name));
    }

    /// Every registered template version, by namespace, name and descending version.
    pub async fn list_templates(&self) -> Result<Vec<TemplateSummary>, EngineError> {
        let rows = sqlx::query(
            "SELECT namespace, name, version, definition, registered_at FROM tasker_templates
              ORDER BY namespace, name, version_major DESC, version_minor DESC, version_patch DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let def: serde_json::Value = r.try_get("definition")?;
                Ok(TemplateSummary {
                    namespace: r.try_get("namespace")?,
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    description: def.get("description").and_then(|d| d.as_str()).map(str::to_string),
                    steps: def
                        .get("steps")
                        .and_then(|s| s.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    registered_at: r.try_get("registered_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
