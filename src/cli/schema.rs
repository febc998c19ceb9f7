//! `alawael schema`: prints the SDL that `schema.graphql` must equal.

pub fn run() -> anyhow::Result<()> {
    print!("{}", crate::graphql::sdl());
    Ok(())
}
