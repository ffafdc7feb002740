"""The domain and its rules: tickets, validity, who may do what. No Flask, no storage, no OAuth."""
