"""Chat data for supervised fine-tuning (``midm data sft``): torch-free.

``chat.render`` turns a conversation into the Mi:dm chat template's token ids plus a per-token
loss mask (assistant content and its closing ``<|eot_id|>``); ``records`` maps the common JSONL
forms to messages and classifies what is wrong with a record; ``build`` writes packed shards.
"""
