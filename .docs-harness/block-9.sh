source "/work/wt/repair/tests/docs/prelude.sh"







pip install 'tether[agents]'
__docs_save
