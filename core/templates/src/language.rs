//! One workflow definition, rendered for every worker language (spec §0.2).
//!
//! A canonical workflow (`fixtures/workflows/*.yaml`) is a template in its **base** namespace.
//! [`render_for_language`] gives the language variant: namespace `<base>_<suffix>` and each
//! step's callable derived from the base namespace and the step name by that language's rule.
//! Everything else (DAG, retry policy, timeouts, input schema, initialization) is copied, so the
//! four variants cannot drift apart.

use crate::TaskTemplate;

/// A worker language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    Python,
    Ruby,
    TypeScript,
}

impl Language {
    pub const ALL: [Language; 4] = [Language::Rust, Language::Python, Language::Ruby, Language::TypeScript];

    /// Namespace suffix: `rs`, `py`, `rb`, `ts`.
    pub fn suffix(self) -> &'static str {
        match self {
            Language::Rust => "rs",
            Language::Python => "py",
            Language::Ruby => "rb",
            Language::TypeScript => "ts",
        }
    }

    /// Directory under `fixtures/task_templates/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Ruby => "ruby",
            Language::TypeScript => "typescript",
        }
    }

    /// The handler callable of `step` in base namespace `module` (spec §0.2 table).
    pub fn callable(self, module: &str, step: &str) -> String {
        let (m, s) = (camel_case(module), camel_case(step));
        match self {
            Language::Rust => format!("{module}::{step}"),
            Language::Python => format!("{module}.step_handlers.{s}Handler"),
            Language::Ruby => format!("{m}::StepHandlers::{s}Handler"),
            Language::TypeScript => format!("{m}.StepHandlers.{s}Handler"),
        }
    }
}

/// `data_pipeline` → `DataPipeline`.
pub fn camel_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The `lang` variant of a canonical (base-namespace) workflow.
pub fn render_for_language(canonical: &TaskTemplate, lang: Language) -> TaskTemplate {
    let base = canonical.namespace_name.as_str();
    let mut t = canonical.clone();
    t.namespace_name = format!("{base}_{}", lang.suffix());
    for step in &mut t.steps {
        step.handler.callable = lang.callable(base, &step.name);
    }
    t
}

/// Deterministic YAML for a rendered template, with a header naming its source.
pub fn generated_yaml(template: &TaskTemplate, source: &str) -> String {
    let body = serde_yaml::to_string(template).expect("templates serialise to YAML");
    format!("# Generated from {source} by `cargo make fixtures`; do not edit.\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callables_follow_each_languages_rule() {
        let cases = [
            (Language::Ruby, "Ecommerce::StepHandlers::ValidateCartHandler"),
            (Language::Python, "ecommerce.step_handlers.ValidateCartHandler"),
            (Language::TypeScript, "Ecommerce.StepHandlers.ValidateCartHandler"),
            (Language::Rust, "ecommerce::validate_cart"),
        ];
        for (lang, want) in cases {
            assert_eq!(lang.callable("ecommerce", "validate_cart"), want);
        }
        assert_eq!(
            Language::Ruby.callable("data_pipeline", "extract_sales_data"),
            "DataPipeline::StepHandlers::ExtractSalesDataHandler"
        );
    }

    #[test]
    fn camel_case_joins_snake_parts() {
        assert_eq!(camel_case("customer_success"), "CustomerSuccess");
        assert_eq!(camel_case("validate_payment_eligibility"), "ValidatePaymentEligibility");
    }
}
