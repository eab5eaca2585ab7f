//! The macros of the [wisp](../wisp/index.html) crate; use them through it
//! (`#[wisp::main]`, `#[wisp::test]`, `wisp::spawn!`), which re-exports
//! them. Generated code names the crate as `::wisp`.
//!
//! Design: the macros only rearrange the user's code into calls of
//! ordinary, documented functions of the crate (`wisp::test::run_test`,
//! `wisp::spawn::spawn_captured`), so what runs is plain Rust that can be
//! read and tested without them; each one checks its input and answers a
//! mistake with a compile error that points at it.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Attribute, Error, Expr, ExprClosure, FnArg, ItemFn, Lit, Meta, NestedMeta, Pat, ReturnType,
    Token, Type,
};

/// `#[wisp::main]`: the program's `main` receives the main process's mailbox.
///
/// ```ignore
/// #[wisp::main]
/// fn main(mailbox: wisp::Mailbox<String>) {
///     println!("{:?}", mailbox.receive_timeout(std::time::Duration::ZERO));
/// }
/// ```
/// `main` may also take no argument, and may return what a plain `main`
/// may (`()`, `Result<(), E: Debug>`).
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let a = TokenStream2::from(attr);
        return Error::new(a.span(), "#[wisp::main] takes no arguments").to_compile_error().into();
    }
    let f = parse_macro_input!(item as ItemFn);
    match expand_main(f) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_main(f: ItemFn) -> syn::Result<TokenStream2> {
    if f.sig.ident != "main" {
        return Err(Error::new(f.sig.ident.span(), "#[wisp::main] goes on `fn main`"));
    }
    if let Some(a) = &f.sig.asyncness {
        return Err(Error::new(a.span(), "wisp processes block instead: `main` cannot be async"));
    }
    if !f.sig.generics.params.is_empty() {
        return Err(Error::new(f.sig.generics.span(), "`main` cannot be generic"));
    }
    let mailbox = mailbox_arg(&f, "main")?;
    let attrs = &f.attrs;
    let vis = &f.vis;
    let body = &f.block;
    let ret = &f.sig.output;
    // A panic of main ends the run with its message as the reason (the
    // crate's hook): wisp prints it as the run's last line.
    Ok(match mailbox {
        None => quote! {
            #(#attrs)*
            #vis fn main() #ret {
                ::wisp::install_panic_hook();
                #body
            }
        },
        Some((pat, ty)) => quote! {
            #(#attrs)*
            #vis fn main() #ret {
                ::wisp::install_panic_hook();
                fn __wisp_main(#pat: #ty) #ret #body
                __wisp_main(<#ty>::new())
            }
        },
    })
}

/// The function's one argument, a mailbox, if it has one.
fn mailbox_arg(f: &ItemFn, what: &str) -> syn::Result<Option<(Box<Pat>, Box<Type>)>> {
    let inputs = &f.sig.inputs;
    if inputs.len() > 1 {
        return Err(Error::new(
            inputs.span(),
            format!("{what} takes at most one argument, its mailbox (`mailbox: wisp::Mailbox<M>`)"),
        ));
    }
    match inputs.first() {
        None => Ok(None),
        Some(FnArg::Receiver(r)) => Err(Error::new(r.span(), format!("{what} cannot take `self`"))),
        Some(FnArg::Typed(t)) => Ok(Some((t.pat.clone(), t.ty.clone()))),
    }
}

/// What `#[wisp::test]` was told, by its own arguments or by the
/// `#[should_panic]`, `#[ignore]` attributes beside it.
#[derive(Default)]
struct TestOptions {
    should_panic: bool,
    expected: Option<String>,
    ignore: Option<Option<String>>,
    timeout_secs: Option<f64>,
}

impl TestOptions {
    fn from_args(&mut self, args: Punctuated<NestedMeta, Token![,]>) -> syn::Result<()> {
        for a in args {
            match a {
                NestedMeta::Meta(Meta::Path(p)) if p.is_ident("should_panic") => self.should_panic = true,
                NestedMeta::Meta(Meta::Path(p)) if p.is_ident("ignore") => self.ignore = Some(None),
                NestedMeta::Meta(Meta::NameValue(nv)) if nv.path.is_ident("timeout") => {
                    self.timeout_secs = Some(seconds(&nv.lit)?);
                }
                NestedMeta::Meta(Meta::NameValue(nv)) if nv.path.is_ident("should_panic") => {
                    self.should_panic = true;
                    self.expected = Some(string(&nv.lit)?);
                }
                NestedMeta::Meta(Meta::NameValue(nv)) if nv.path.is_ident("ignore") => {
                    self.ignore = Some(Some(string(&nv.lit)?));
                }
                other => {
                    return Err(Error::new(
                        other.span(),
                        "#[wisp::test] takes `timeout = SECONDS`, `should_panic`, `should_panic = \"text\"`, `ignore`",
                    ))
                }
            }
        }
        Ok(())
    }

    /// Take `#[should_panic]` and `#[ignore]` out of `attrs` into self.
    fn from_attrs(&mut self, attrs: &mut Vec<Attribute>) -> syn::Result<()> {
        let mut kept = Vec::new();
        for a in attrs.drain(..) {
            if a.path.is_ident("should_panic") {
                self.should_panic = true;
                match a.parse_meta()? {
                    Meta::Path(_) => {}
                    Meta::NameValue(nv) => self.expected = Some(string(&nv.lit)?),
                    Meta::List(l) => {
                        for n in l.nested {
                            match n {
                                NestedMeta::Meta(Meta::NameValue(nv)) if nv.path.is_ident("expected") => {
                                    self.expected = Some(string(&nv.lit)?)
                                }
                                other => return Err(Error::new(other.span(), "expected `expected = \"text\"`")),
                            }
                        }
                    }
                }
            } else if a.path.is_ident("ignore") {
                self.ignore = Some(match a.parse_meta()? {
                    Meta::NameValue(nv) => Some(string(&nv.lit)?),
                    _ => None,
                });
            } else if a.path.is_ident("test") {
                return Err(Error::new(a.span(), "#[wisp::test] replaces #[test]: remove this one"));
            } else {
                kept.push(a);
            }
        }
        *attrs = kept;
        Ok(())
    }
}

fn string(lit: &Lit) -> syn::Result<String> {
    match lit {
        Lit::Str(s) => Ok(s.value()),
        other => Err(Error::new(other.span(), "expected a string")),
    }
}

fn seconds(lit: &Lit) -> syn::Result<f64> {
    let v = match lit {
        Lit::Int(i) => i.base10_parse::<u64>()? as f64,
        Lit::Float(f) => f.base10_parse::<f64>()?,
        other => return Err(Error::new(other.span(), "the timeout is a number of seconds")),
    };
    // (What Duration::from_secs_f64 takes without panicking at run time,
    // in the test binary, and not less than a nanosecond.)
    match std::time::Duration::try_from_secs_f64(v) {
        Ok(d) if !d.is_zero() => Ok(v),
        Ok(_) => Err(Error::new(lit.span(), "the timeout must be more than 0 seconds")),
        Err(_) => Err(Error::new(lit.span(), "the timeout must be a number of seconds from 1e-9 to 1e19")),
    }
}

/// `#[wisp::test]`: a drop-in for `#[test]` that runs the test as its own
/// wisp process. A panic fails that test only, with its message and
/// location; `#[should_panic]` (or `#[should_panic(expected = "...")]`)
/// and `#[ignore]` work as with `#[test]`, and so do the arguments
/// `#[wisp::test(should_panic, ignore, timeout = 5)]`. A test that runs
/// longer than its timeout (default 60 s, `WISP_TEST_TIMEOUT`) is killed
/// and fails. The function may take the process's mailbox and may return
/// `Result<(), E: Debug>` (an `Err` fails the test).
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr with Punctuated::<NestedMeta, Token![,]>::parse_terminated);
    let f = parse_macro_input!(item as ItemFn);
    match expand_test(args, f) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_test(args: Punctuated<NestedMeta, Token![,]>, mut f: ItemFn) -> syn::Result<TokenStream2> {
    let mut opt = TestOptions::default();
    opt.from_args(args)?;
    opt.from_attrs(&mut f.attrs)?;
    if let Some(a) = &f.sig.asyncness {
        return Err(Error::new(a.span(), "wisp tests block instead: a test cannot be async"));
    }
    if !f.sig.generics.params.is_empty() {
        return Err(Error::new(f.sig.generics.span(), "a test cannot be generic"));
    }
    let (pat, ty) = match mailbox_arg(&f, "a test")? {
        Some((p, t)) => (quote!(#p), quote!(#t)),
        None => (quote!(_), quote!(::wisp::Mailbox<()>)),
    };
    let name = &f.sig.ident;
    let attrs = &f.attrs;
    let body = &f.block;
    let ret = match &f.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => quote!(#t),
    };
    let ignore = match &opt.ignore {
        None => quote!(),
        Some(None) => quote!(#[ignore]),
        Some(Some(why)) => quote!(#[ignore = #why]),
    };
    let should_panic = match (&opt.should_panic, &opt.expected) {
        (false, _) => quote!(::wisp::test::ShouldPanic::No),
        (true, None) => quote!(::wisp::test::ShouldPanic::Yes),
        (true, Some(text)) => quote!(::wisp::test::ShouldPanic::YesWithMessage(#text)),
    };
    let timeout = match opt.timeout_secs {
        None => quote!(::core::option::Option::None),
        Some(s) => quote!(::core::option::Option::Some(::core::time::Duration::from_secs_f64(#s))),
    };
    Ok(quote_spanned! {Span::call_site()=>
        #[test]
        #ignore
        #(#attrs)*
        fn #name() -> ::core::result::Result<(), ::wisp::test::Failure> {
            fn __wisp_test_body(#pat: #ty) -> #ret #body
            ::wisp::test::run_test(
                ::wisp::test::TestSpec {
                    name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    should_panic: #should_panic,
                    timeout: #timeout,
                },
                __wisp_test_body,
            )
        }
    })
}

/// The input of `spawn!`: an optional capability set, then a closure
/// `|captures..., mailbox: Mailbox<M>| body`.
struct SpawnInput {
    caps: Option<Expr>,
    captures: Vec<syn::Ident>,
    mailbox: Option<(Pat, Type)>,
    body: Expr,
    closure: ExprClosure,
}

impl Parse for SpawnInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let caps = if input.peek(Token![|]) || input.peek(Token![||]) || input.peek(Token![move]) {
            None
        } else {
            let e: Expr = input.parse()?;
            input.parse::<Token![,]>()?;
            Some(e)
        };
        let closure: ExprClosure = input.parse()?;
        if !input.is_empty() {
            let _: Option<Token![,]> = input.parse()?;
        }
        if !input.is_empty() {
            return Err(input.error("spawn! takes an optional capability set and one closure"));
        }
        if let Some(m) = &closure.capture {
            return Err(Error::new(
                m.span(),
                "spawn! always copies its captures into the new process: drop `move`",
            ));
        }
        let mut captures = Vec::new();
        let mut mailbox = None;
        let n = closure.inputs.len();
        for (i, p) in closure.inputs.iter().enumerate() {
            match p {
                Pat::Ident(id) if id.by_ref.is_none() && id.subpat.is_none() => {
                    if id.mutability.is_some() {
                        return Err(Error::new(id.span(), "a capture is a variable name: drop `mut` (rebind it inside)"));
                    }
                    captures.push(id.ident.clone());
                }
                Pat::Type(t) if i + 1 == n => mailbox = Some(((*t.pat).clone(), (*t.ty).clone())),
                Pat::Type(t) => {
                    return Err(Error::new(
                        t.span(),
                        "only the last parameter has a type: the mailbox (`mailbox: Mailbox<M>`); \
                         the others name variables to capture",
                    ))
                }
                other => {
                    return Err(Error::new(
                        other.span(),
                        "spawn!'s parameters name the variables to capture (then, last, `mailbox: Mailbox<M>`)",
                    ))
                }
            }
        }
        let body = (*closure.body).clone();
        Ok(SpawnInput { caps, captures, mailbox, body, closure })
    }
}

fn expand_spawn(input: TokenStream, func: &str) -> TokenStream {
    let s = parse_macro_input!(input as SpawnInput);
    let _ = &s.closure;
    let caps_tokens = match &s.caps {
        None => quote!(::core::option::Option::None),
        Some(e) => quote!(::core::option::Option::Some(#e)),
    };
    let caps = &s.captures;
    // One check per capture, spanned at it: a capture that is not
    // serializable is an error there, saying why.
    let checks = caps.iter().map(|c| quote_spanned! {c.span()=> ::wisp::spawn::assert_capture(&#c);});
    let (mpat, mty) = match &s.mailbox {
        Some((p, t)) => (quote!(#p), quote!(#t)),
        None => (quote!(_), quote!(::wisp::Mailbox<()>)),
    };
    let body = &s.body;
    let func = syn::Ident::new(func, Span::call_site());
    quote! {
        {
            #(#checks)*
            ::wisp::spawn::#func(
                #caps_tokens,
                &(#(&#caps,)*),
                |(#(#caps,)*), #mpat: #mty| { #body },
            )
        }
    }
    .into()
}

/// `spawn!(|a, b, mailbox: Mailbox<M>| body)`: start `body` as a new
/// process, with copies of the variables `a` and `b` (serialized into it:
/// the caller keeps its own). The mailbox parameter is optional; a
/// capability set may come first: `spawn!(&caps, |a| ...)`. Returns
/// `Result<Process<M>, SpawnError>`.
#[proc_macro]
pub fn spawn(input: TokenStream) -> TokenStream {
    expand_spawn(input, "spawn_captured")
}

/// As `spawn!`, linked to the caller (`Result<Process<M>, SpawnError>`).
#[proc_macro]
pub fn spawn_link(input: TokenStream) -> TokenStream {
    expand_spawn(input, "spawn_link_captured")
}

/// As `spawn!`, monitored by the caller
/// (`Result<(Process<M>, MonitorRef), SpawnError>`).
#[proc_macro]
pub fn spawn_monitor(input: TokenStream) -> TokenStream {
    expand_spawn(input, "spawn_monitor_captured")
}

fn expand_spawn_on(input: TokenStream, func: &str) -> TokenStream {
    let s = parse_macro_input!(input as SpawnInput);
    let Some(node) = &s.caps else {
        return Error::new(
            s.closure.span(),
            "spawn_on! takes the node first: spawn_on!(\"name@host\", |a, b| ...)",
        )
        .to_compile_error()
        .into();
    };
    let caps = &s.captures;
    let checks = caps.iter().map(|c| quote_spanned! {c.span()=> ::wisp::spawn::assert_capture(&#c);});
    let (mpat, mty) = match &s.mailbox {
        Some((p, t)) => (quote!(#p), quote!(#t)),
        None => (quote!(_), quote!(::wisp::Mailbox<()>)),
    };
    let body = &s.body;
    let func = syn::Ident::new(func, Span::call_site());
    quote! {
        {
            #(#checks)*
            ::wisp::node::#func(
                ::core::convert::AsRef::<str>::as_ref(&#node),
                &(#(&#caps,)*),
                |(#(#caps,)*), #mpat: #mty| { #body },
            )
        }
    }
    .into()
}

/// `spawn_on!(node, |a, b, mailbox: Mailbox<M>| body)`: as `spawn!`, on
/// another node (`wisp::node::spawn_on`; `node` is anything `AsRef<str>`).
/// Returns `Result<Process<M>, SpawnError>`.
#[proc_macro]
pub fn spawn_on(input: TokenStream) -> TokenStream {
    expand_spawn_on(input, "spawn_on_captured")
}

/// As `spawn_on!`, linked to the caller.
#[proc_macro]
pub fn spawn_link_on(input: TokenStream) -> TokenStream {
    expand_spawn_on(input, "spawn_link_on_captured")
}

/// As `spawn_on!`, monitored by the caller
/// (`Result<(Process<M>, MonitorRef), SpawnError>`).
#[proc_macro]
pub fn spawn_monitor_on(input: TokenStream) -> TokenStream {
    expand_spawn_on(input, "spawn_monitor_on_captured")
}
