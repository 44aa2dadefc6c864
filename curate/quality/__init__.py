"""Label quality: how far label sources agree, and which given labels are likely wrong."""
