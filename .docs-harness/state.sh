declare -a FUNCNAME=([0]="__docs_save" [1]="main")
declare -x OPENAI_API_KEY="..."
declare -a PIPESTATUS=([0]="0")
cd /work/wt/repair
