"""Command-line tools: smmcl-train, smmcl-evaluate, smmcl-tsne, smmcl-export, smmcl-make-hha."""
